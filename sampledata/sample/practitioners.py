"""Practitioners and their PractitionerRoles at the places the estate offers."""

from __future__ import annotations

import random
from collections.abc import Iterable

from sampledata.elements import phone
from sampledata.endpoints import direct_endpoint
from sampledata.people import FEMALE_NAMES, MALE_NAMES, SURNAMES, display_name, mailbox_name
from sampledata.practitioners import practitioner, practitioner_role
from sampledata.terminology import SPECIALTIES, Specialty

from .estate import SPECIAL_NAMES
from .part import Part


class Practitioners(Part):
    """Builds each practitioner, their roles and Direct mailbox (SampleBuilder's part)."""

    def pick_name(self, index: int) -> tuple[list[str], str, str]:
        if index % 9 == 4 and index // 9 < len(SPECIAL_NAMES):
            return SPECIAL_NAMES[index // 9]
        gender = self.rng.choice(["female", "male"])
        table = FEMALE_NAMES if gender == "female" else MALE_NAMES
        given = weighted_pick(self.rng, table)
        family = weighted_pick(self.rng, SURNAMES)
        if self.rng.random() < 0.04:
            family = f"{family}-{weighted_pick(self.rng, SURNAMES)}"
        return [given], family, gender

    def pick_specialty(self) -> Specialty:
        offered = [s for s in SPECIALTIES if s.code in self.slots]
        return self.rng.choices(offered, weights=[s.weight for s in offered])[0]

    def build_practitioner(self, index: int) -> None:
        given, family, gender = self.pick_name(index)
        specialty = self.pick_specialty()
        slots = self.slots[specialty.code]
        home = self.rng.choice(slots)
        npi = self.new_npi("1")
        pid = f"prac-{npi}"
        retired = index % 37 == 36 or not home.active
        degree = "DO" if specialty.degree == "MD" and self.rng.random() < 0.11 else specialty.degree
        self.add(
            practitioner(
                pid,
                npi=npi,
                family=family,
                given=given,
                gender=gender,
                degree=degree,
                telecom=[phone(home.area_code, self.rng.randrange(100))],
                active=not retired,
                prefix="Dr." if specialty.role == "doctor" and degree != "PA" else None,
                license_state=home.state,
            )
        )
        endpoints = [f"ep-{home.system.key}-fhir"] if not home.system.independent else []
        if self.rng.random() < 0.12:
            direct_id = f"ep-{pid}-direct"
            mailbox = f"{mailbox_name(given[0], family)}@direct.{home.system.domain}"
            self.add(
                direct_endpoint(
                    direct_id, f"Direct mailbox of {given[0]} {family}", mailbox, home.org_id
                )
            )
            endpoints.insert(0, direct_id)
        name = display_name(given, family, degree)
        places = [home]
        others = [s for s in slots if s is not home and s.system is home.system]
        if others and self.rng.random() < 0.15:
            places.append(self.rng.choice(others))
        for n, slot in enumerate(places, start=1):
            self.add(
                practitioner_role(
                    f"role-{npi}-{n}",
                    practitioner_id=pid,
                    practitioner_name=name,
                    org_id=slot.org_id,
                    location_ids=slot.location_ids,
                    specialty=specialty,
                    telecom=[phone(slot.area_code, self.rng.randrange(100))],
                    endpoints=endpoints,
                    active=not retired and slot.active,
                )
            )


def weighted_pick(rng: random.Random, table: Iterable[tuple[str, float]]) -> str:
    names, weights = zip(*table, strict=True)
    return rng.choices(names, weights=weights)[0]
