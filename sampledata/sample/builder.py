"""SampleBuilder: one seeded random stream through the estate, then the practitioners."""

from __future__ import annotations

import random
from collections.abc import Iterable

from sampledata.people import make_npi

from .estate import INDEPENDENT, PRACTITIONERS, SEED, SYSTEMS
from .organizations import OrganizationsAndPlaces, Slot
from .practitioners import Practitioners

FULL_URL_BASE = "https://directory.example.org/fhir"


class SampleBuilder(OrganizationsAndPlaces, Practitioners):
    """Holds what both parts share: the one seeded stream, the resources, NPIs and slots."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible fake data, not secrets
        self.resources: list[dict] = []
        self.slots: dict[str, list[Slot]] = {}
        self.npis: set[str] = set()

    # ---------------------------------------------------------- helpers

    def add(self, content: dict) -> None:
        self.resources.append(content)

    def new_npi(self, leading: str = "1") -> str:
        while True:
            npi = make_npi(leading + f"{self.rng.randrange(10**8):08d}")
            if npi not in self.npis:
                self.npis.add(npi)
                return npi

    def offer(self, specialties: Iterable[str], slot: Slot) -> None:
        for code in specialties:
            self.slots.setdefault(code, []).append(slot)

    # ---------------------------------------------------------- output

    def build(self) -> dict:
        for system in SYSTEMS + INDEPENDENT:
            self.build_system(system)
        for index in range(PRACTITIONERS):
            self.build_practitioner(index)
        return self.bundle()

    def bundle(self) -> dict:
        # File order is deliberately not load order: loaddirectory works the order out itself.
        order = ["Organization", "Location", "Practitioner", "PractitionerRole", "Endpoint"]
        ordered = sorted(self.resources, key=lambda r: order.index(r["resourceType"]))
        return {
            "resourceType": "Bundle",
            "id": "sample-directory",
            "meta": {"lastUpdated": "2025-01-15T00:00:00Z"},
            "type": "collection",
            "timestamp": "2025-01-15T00:00:00Z",
            "entry": [
                {"fullUrl": f"{FULL_URL_BASE}/{r['resourceType']}/{r['id']}", "resource": r}
                for r in ordered
            ],
        }
