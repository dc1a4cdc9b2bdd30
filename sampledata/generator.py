"""The synthetic directory generator: any size, deterministic for a seed, streamed in groups."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .elements import address, phone
from .endpoints import direct_endpoint, fhir_endpoint
from .locations import LOCATION_TYPES, area_location, location
from .organizations import network, organization, organization_affiliation, payer_organization
from .people import FEMALE_NAMES, MALE_NAMES, SURNAMES, display_name, mailbox_name, npi_for_index
from .places import (
    CITIES,
    NAME_PREFIXES,
    PRACTICE_SUFFIXES,
    STREET_NAMES,
    STREET_SUFFIXES,
    SYSTEM_SUFFIXES,
    City,
)
from .plans import insurance_plan
from .practitioners import practitioner, practitioner_role
from .services import healthcare_service
from .terminology import (
    DEFAULT_SERVICE_KIND,
    SERVICE_KIND,
    SPECIALTIES,
    SPECIALTY_BY_CODE,
    Specialty,
)
from .weighted import Weighted

# One generated group: resources that reference each other, stored together as (type, content).
Group = list[tuple[str, dict[str, Any]]]

BLOCK = 1000  # practitioners per random stream: output depends on the seed only, not batch sizes
ROLE_COUNTS = Weighted([1, 2, 3], [70, 22, 8])
CITY_CHOICE = Weighted(CITIES, [c.population for c in CITIES])
SPECIALTY_CHOICE = Weighted(SPECIALTIES, [s.weight for s in SPECIALTIES])
SURNAME_CHOICE = Weighted(*zip(*SURNAMES, strict=True))
GIVEN_CHOICE = {
    "male": Weighted(*zip(*MALE_NAMES, strict=True)),
    "female": Weighted(*zip(*FEMALE_NAMES, strict=True)),
}
PRACTITIONERS_PER_LOCATION = 25
MULTI_SPECIALTY_SIZE = 40  # expected practitioners above which an org takes every specialty
STATES = sorted({c.state for c in CITIES})

# Invented health plan names (no real insurer is meant).
PAYER_NAMES = [
    "Keystone Valley",
    "Bright Harbor",
    "Prairie Shield",
    "Coastline",
    "Trillium Ridge",
    "Harvest Plains",
    "Silver Birch",
    "Open Range",
    "Lantern Bay",
    "Copper Canyon",
    "Tall Pines",
    "Morning Star",
]
ORGANIZATIONS_PER_PAYER = 2000
MAX_PAYERS = len(PAYER_NAMES)
# Each payer runs a broad and a narrow network; a practice in a payer's area joins each with
# this probability.
NETWORK_TIERS = (("std", "Standard Network", 0.5), ("prem", "Preferred Network", 0.2))
# Products per payer: id suffix, Plan-Net product type, networks (tiers), plan types.
PRODUCTS = (
    (
        "ppo",
        ("commppo", "Commercial PPO"),
        ("std", "prem"),
        (("gold", "Gold-QHP"), ("silver", "Silver-QHP")),
    ),
    ("hmo", ("commhmo", "Commercial HMO"), ("prem",), (("bronze", "Bronze-QHP"),)),
)
VIRTUAL_MODALITIES = ["phone", "video", "web", "app"]
MAX_AFFILIATION_LINKS = 10  # locations / services listed on one affiliation


@dataclass(frozen=True)
class Site:
    """One place a role can point at: the (sub-)organization and its location."""

    org_id: str
    location_id: str
    city: City
    service_id: str


@dataclass(frozen=True)
class OrgSlot:
    org_id: str
    sites: tuple[Site, ...]
    endpoint_ids: tuple[str, ...]
    domain: str
    network_ids: tuple[str, ...] = ()


def payer_count(organizations: int) -> int:
    return max(2, min(MAX_PAYERS, organizations // ORGANIZATIONS_PER_PAYER))


class DirectoryGenerator:
    """Deterministic synthetic directory; yields groups of (type, content) that load together.

    Organizations are kept in memory (one small slot each); practitioners are produced block by
    block, so memory does not grow with the number of practitioners.
    """

    def __init__(
        self, practitioners: int, organizations: int, seed: int = 1, *, link_services: bool = True
    ) -> None:
        self.practitioners = practitioners
        self.organizations = max(1, organizations)
        self.seed = seed
        self.tag = f"g{seed}"
        self.payers = payer_count(self.organizations)
        # Roles name their site's HealthcareService only where that type can be stored.
        self.link_services = link_services
        self.slots: list[OrgSlot] = []
        self.by_specialty: dict[str, Weighted] = {}
        self.networks_by_state: dict[str, list[tuple[str, float]]] = {}
        self._systems_by_city: dict[tuple[str, str], str] = {}
        self._org_npis = 0

    @property
    def first_id(self) -> tuple[str, str]:
        return "Organization", f"{self.tag}-org-0"

    # ---------------------------------------------------------- payers and networks

    def payer_groups(self) -> Iterator[Group]:
        """Coverage areas (one Location per state), then each payer with networks and plans."""
        rng = random.Random(f"{self.seed}:payers")  # noqa: S311 - reproducible fake data
        areas = {state: f"{self.tag}-area-{state}" for state in STATES}
        yield [("Location", area_location(lid, state)) for state, lid in areas.items()]
        national = max(1, self.payers // 3)
        for index in range(self.payers):
            yield self._payer(rng, index, areas, index < national)

    def _payer(
        self, rng: random.Random, index: int, areas: dict[str, str], national: bool
    ) -> Group:
        home = CITY_CHOICE.pick(rng)
        states = (
            STATES if national else sorted({home.state, *rng.sample(STATES, rng.randint(0, 3))})
        )
        area_ids = [areas[s] for s in states]
        payer_id = f"{self.tag}-payer-{index}"
        name = f"{PAYER_NAMES[index]} Health Plan"
        naic = f"{(self.seed * 101 + index) % 90000 + 10000:05d}"
        group = [
            (
                "Organization",
                payer_organization(
                    payer_id,
                    name,
                    naic=naic,
                    addr=self._street_address(rng, home),
                    telecom=[phone(home.area_code, index)],
                ),
            )
        ]
        tiers = {}
        for tier, label, joins in NETWORK_TIERS:
            tiers[tier] = f"{self.tag}-net-{index}-{tier}"
            group.append(
                (
                    "Organization",
                    network(tiers[tier], f"{name} {label}", payer_id=payer_id, area_ids=area_ids),
                )
            )
            for state in states:
                self.networks_by_state.setdefault(state, []).append((tiers[tier], joins))
        for suffix, product, product_tiers, plan_types in PRODUCTS:
            plan = insurance_plan(
                f"{self.tag}-plan-{index}-{suffix}",
                f"{name} {suffix.upper()}",
                product=product,
                payer_id=payer_id,
                network_ids=[tiers[t] for t in product_tiers],
                area_ids=area_ids,
                plan_types=list(plan_types),
            )
            group.append(("InsurancePlan", plan))
        return group

    def _join_networks(self, rng: random.Random, city: City) -> tuple[str, ...]:
        return tuple(
            nid for nid, joins in self.networks_by_state.get(city.state, ()) if rng.random() < joins
        )

    # ---------------------------------------------------------- organizations

    def organization_groups(self) -> Iterator[Group]:
        """Payers and networks first (practices join them), then provider organizations."""
        if not self.networks_by_state:
            yield from self.payer_groups()
        rng = random.Random(f"{self.seed}:organizations")  # noqa: S311 - reproducible fake data
        # Pareto sizes: a few large systems, a long tail of small practices.
        sizes = [rng.paretovariate(1.2) for _ in range(self.organizations)]
        scale = self.practitioners / sum(sizes)
        candidates: dict[str, tuple[list[int], list[float]]] = {
            s.code: ([], []) for s in SPECIALTIES
        }
        for index, size in enumerate(sizes):
            expected = size * scale
            focus = SPECIALTY_CHOICE.pick(rng)
            group, slot = self._organization(rng, index, expected, focus)
            self.slots.append(slot)
            codes = SPECIALTY_BY_CODE if expected >= MULTI_SPECIALTY_SIZE else [focus.code]
            for code in codes:
                candidates[code][0].append(index)
                candidates[code][1].append(size)
            yield group
        self._index_specialties(candidates, sizes)

    def _index_specialties(
        self, candidates: dict[str, tuple[list[int], list[float]]], sizes: Sequence[float]
    ) -> None:
        # A specialty nobody practices alone still needs somewhere to work: the largest orgs.
        largest = sorted(range(len(sizes)), key=sizes.__getitem__)[-3:]
        for code, (indexes, weights) in candidates.items():
            if not indexes:
                indexes, weights = largest, [sizes[i] for i in largest]
            self.by_specialty[code] = Weighted(indexes, weights)

    def _organization(
        self, rng: random.Random, index: int, expected: float, focus: Specialty
    ) -> tuple[Group, OrgSlot]:
        city = CITY_CHOICE.pick(rng)
        big = expected >= MULTI_SPECIALTY_SIZE
        prefix = rng.choice(NAME_PREFIXES)
        if big:
            name = f"{prefix} {rng.choice(SYSTEM_SUFFIXES)}"
        else:
            name = f"{prefix} {focus.clinic} {rng.choice(PRACTICE_SUFFIXES)}"
        org_id = f"{self.tag}-org-{index}"
        domain = f"{prefix.lower().replace(' ', '')}{index}.example"
        endpoints = self._org_endpoints(rng, index, name, org_id, domain, big)
        endpoint_ids = tuple(e["id"] for e in endpoints)
        top = organization(
            org_id,
            name,
            npi=self._next_org_npi(),
            type_code="prov",
            addr=self._street_address(rng, city),
            telecom=[phone(city.area_code, index)],
            endpoints=endpoint_ids,
            active=rng.random() > 0.02,
        )
        group = [("Organization", top), *(("Endpoint", e) for e in endpoints)]
        count = max(1, min(60, round(expected / PRACTITIONERS_PER_LOCATION)))
        sites = []
        for k in range(count):
            site_city = city if k == 0 or rng.random() < 0.7 else CITY_CHOICE.pick(rng)
            site_org = org_id
            if big and k > 0:
                # Large systems run each campus as its own organization under the parent.
                site_org = f"{org_id}-{k}"
                group.append(
                    (
                        "Organization",
                        organization(
                            site_org,
                            f"{name} - {site_city.name}",
                            npi=self._next_org_npi(),
                            type_code="prov",
                            addr=self._street_address(rng, site_city),
                            telecom=[phone(site_city.area_code, index + k)],
                            part_of=org_id,
                        ),
                    )
                )
            loc = self._location(
                rng, f"{self.tag}-loc-{index}-{k}", name, site_org, site_city, big and k == 0
            )
            group.append(("Location", loc))
            sites.append(Site(site_org, loc["id"], site_city, f"{self.tag}-hs-{index}-{k}"))
        # Plan-Net content draws on its own stream, so the resources above stay as they were.
        extra = random.Random(f"{self.seed}:plan-net:{index}")  # noqa: S311 - reproducible
        networks = self._join_networks(extra, city)
        specialties = self._offered(extra, focus, big)
        group += self._services(extra, name, sites, specialties, big)
        primary = None if big else self._systems_by_city.get((city.name, city.state))
        if big and top["active"]:
            # An inactive system is nobody's primary: Plan-Net affiliations name an Organization
            # that conforms to plannet-Organization, whose `active` is fixed true.
            self._systems_by_city.setdefault((city.name, city.state), org_id)
        if networks or primary:
            role = "hospital" if big else SERVICE_KIND.get(focus.code, DEFAULT_SERVICE_KIND)[2]
            affiliation = organization_affiliation(
                f"{self.tag}-affil-{index}",
                participating_id=org_id,
                primary_id=primary,
                network_ids=list(networks),
                role=role,
                specialties=specialties,
                location_ids=[s.location_id for s in sites[:MAX_AFFILIATION_LINKS]],
                service_ids=[s.service_id for s in sites[:MAX_AFFILIATION_LINKS]],
            )
            group.append(("OrganizationAffiliation", affiliation))
        if not top["active"]:
            group = _unclaimed_if_naming(group, f"Organization/{org_id}")
        return group, OrgSlot(org_id, tuple(sites), endpoint_ids, domain, networks)

    @staticmethod
    def _offered(rng: random.Random, focus: Specialty, big: bool) -> list[Specialty]:
        """The focus specialty; a large system lists a few more on its services."""
        found = [focus]
        for _ in range(4 if big else 0):
            other = SPECIALTY_CHOICE.pick(rng)
            if other not in found:
                found.append(other)
        return found

    def _services(
        self,
        rng: random.Random,
        name: str,
        sites: Sequence[Site],
        specialties: Sequence[Specialty],
        big: bool,
    ) -> Group:
        """One HealthcareService per site: what is offered there, how, and by whom."""
        category, service_type, _ = SERVICE_KIND.get(specialties[0].code, DEFAULT_SERVICE_KIND)
        found = []
        for k, site in enumerate(sites):
            if big:
                category, service_type = ("hosp" if k == 0 else "outpat"), None
            virtual = None
            if rng.random() < 0.25:
                virtual = sorted(rng.sample(VIRTUAL_MODALITIES, rng.randint(1, 2)))
            service = healthcare_service(
                site.service_id,
                f"{name} - {site.city.name} services",
                org_id=site.org_id,
                location_id=site.location_id,
                category=category,
                service_type=service_type,
                specialties=specialties,
                virtual=virtual,
                telecom=[phone(site.city.area_code, rng.randrange(100))],
            )
            found.append(("HealthcareService", service))
        return found

    def _org_endpoints(
        self, rng: random.Random, index: int, name: str, org_id: str, domain: str, big: bool
    ) -> list[dict]:
        status = "active" if rng.random() > 0.03 else rng.choice(["off", "suspended"])
        found = [
            direct_endpoint(
                f"{self.tag}-ep-{index}-direct",
                f"{name} Direct mailbox",
                f"referrals@direct.{domain}",
                org_id,
                status,
            )
        ]
        if big or rng.random() < 0.4:
            found.append(
                fhir_endpoint(
                    f"{self.tag}-ep-{index}-fhir",
                    f"{name} FHIR API",
                    f"https://fhir.{domain}/r4",
                    org_id,
                    status,
                )
            )
        return found

    def _location(
        self, rng: random.Random, lid: str, name: str, org_id: str, city: City, hospital: bool
    ) -> dict:
        type_code = "HOSP" if hospital else "OF"
        return location(
            lid,
            f"{name} - {city.name}" if not hospital else name,
            addr=self._street_address(rng, city),
            latitude=city.latitude + rng.gauss(0, 0.04),
            longitude=city.longitude + rng.gauss(0, 0.05),
            org_id=org_id,
            type_code=type_code,
            type_display=LOCATION_TYPES[type_code],
            physical="bu",
            telecom=[phone(city.area_code, rng.randrange(100))],
        )

    def _street_address(self, rng: random.Random, city: City) -> dict:
        street = (
            f"{rng.randrange(1, 9900)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_SUFFIXES)}"
        )
        return address(street, city.name, city.state, f"{city.zip3}{rng.randrange(100):02d}")

    def _next_org_npi(self) -> str:
        self._org_npis += 1
        return npi_for_index(self._org_npis, self.seed, leading="2")

    # ---------------------------------------------------------- practitioners

    def practitioner_groups(self, blocks: Iterable[int] | None = None) -> Iterator[Group]:
        """Groups for every practitioner block (or just `blocks`), in block order."""
        if not self.slots:
            for _ in self.organization_groups():
                pass
        count = -(-self.practitioners // BLOCK)
        for block in blocks if blocks is not None else range(count):
            yield from self.block_groups(block)

    def block_groups(self, block: int) -> Iterator[Group]:
        rng = random.Random(f"{self.seed}:block:{block}")  # noqa: S311 - reproducible fake data
        for index in range(block * BLOCK, min(self.practitioners, (block + 1) * BLOCK)):
            yield self._practitioner(rng, index)

    def _practitioner(self, rng: random.Random, index: int) -> list[tuple[str, dict]]:
        npi = npi_for_index(index, self.seed)
        pid = f"{self.tag}-prac-{npi}"
        gender = "female" if rng.random() < 0.45 else "male"
        given = GIVEN_CHOICE[gender].pick(rng)
        family = SURNAME_CHOICE.pick(rng)
        if rng.random() < 0.03:
            family = f"{family}-{SURNAME_CHOICE.pick(rng)}"
        specialty = SPECIALTY_CHOICE.pick(rng)
        degree = "DO" if specialty.degree == "MD" and rng.random() < 0.11 else specialty.degree
        active = rng.random() > 0.03
        places = self._places(rng, specialty)
        home = places[0][1]
        group = [
            (
                "Practitioner",
                practitioner(
                    pid,
                    npi=npi,
                    family=family,
                    given=[given],
                    gender=gender,
                    degree=degree,
                    telecom=[phone(home.city.area_code, rng.randrange(100))],
                    active=active,
                    prefix="Dr." if specialty.role == "doctor" and degree != "PA" else None,
                    license_state=home.city.state,
                ),
            )
        ]
        personal = []
        if rng.random() < 0.1:
            slot = places[0][0]
            mailbox = f"{mailbox_name(given, family)}{index}@direct.{slot.domain}"
            personal = [f"{self.tag}-ep-{npi}"]
            group.append(
                (
                    "Endpoint",
                    direct_endpoint(
                        personal[0], f"Direct mailbox of {given} {family}", mailbox, slot.org_id
                    ),
                )
            )
        name = display_name([given], family, degree)
        for n, (slot, site) in enumerate(places, start=1):
            group.append(
                (
                    "PractitionerRole",
                    practitioner_role(
                        f"{self.tag}-role-{npi}-{n}",
                        practitioner_id=pid,
                        practitioner_name=name,
                        org_id=site.org_id,
                        location_ids=[site.location_id],
                        specialty=specialty,
                        telecom=[phone(site.city.area_code, rng.randrange(100))],
                        endpoints=[*personal, *slot.endpoint_ids],
                        active=active,
                        network_ids=slot.network_ids,
                        service_ids=[site.service_id] if self.link_services else (),
                    ),
                )
            )
        return group

    def _places(self, rng: random.Random, specialty: Specialty) -> list[tuple[OrgSlot, Site]]:
        """1-3 distinct sites; extra roles are mostly other sites of the same organization."""
        orgs = self.by_specialty[specialty.code]
        slot = self.slots[orgs.pick(rng)]
        places = [(slot, rng.choice(slot.sites))]
        for _ in range(ROLE_COUNTS.pick(rng) - 1):
            other = slot if rng.random() < 0.6 else self.slots[orgs.pick(rng)]
            place = (other, rng.choice(other.sites))
            if place[1] not in (site for _, site in places):
                places.append(place)
        return places


def _unclaimed_if_naming(group: Group, reference: str) -> Group:
    """The group with the Plan-Net claim dropped from each service and affiliation naming a
    closed organization: plannet-Organization fixes `active` true, so a Plan-Net resource naming
    it would fail its targetProfile (the server refuses such a write over the API)."""
    naming = ("providedBy", "participatingOrganization")
    return [
        (rtype, {k: v for k, v in content.items() if k != "meta"})
        if any((content.get(name) or {}).get("reference") == reference for name in naming)
        else (rtype, content)
        for rtype, content in group
    ]
