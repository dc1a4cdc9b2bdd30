"""Organizations, their Locations and Endpoints: a health system down to its departments."""

from __future__ import annotations

from dataclasses import dataclass

from sampledata.elements import address, phone
from sampledata.endpoints import direct_endpoint, fhir_endpoint
from sampledata.locations import LOCATION_TYPES, location
from sampledata.organizations import organization

from .estate import Dept, Site, System
from .part import Part


@dataclass
class Slot:
    """Where a practitioner with some specialty can work: an organization and its locations."""

    system: System
    org_id: str
    location_ids: list[str]
    area_code: str
    state: str
    active: bool


class OrganizationsAndPlaces(Part):
    """Builds a system's Organization tree, its Locations and Endpoints (SampleBuilder's part)."""

    def build_system(self, system: System) -> None:
        hq = system.hq
        fhir_id = f"ep-{system.key}-fhir"
        org_id = f"org-{system.key}"
        endpoints = [fhir_id]
        if not system.independent:
            self.add(
                fhir_endpoint(
                    fhir_id, f"{system.name} FHIR API", f"https://fhir.{system.domain}/r4", org_id
                )
            )
        else:
            direct = "active" if system.active else "off"
            endpoints = [f"ep-{system.key}-direct"]
            self.add(
                direct_endpoint(
                    endpoints[0],
                    f"{system.name} Direct mailbox",
                    f"referrals@direct.{system.domain}",
                    org_id,
                    direct,
                )
            )
        if system.key == "riverbend":
            # A retired DSTU2 server kept for history: clients should skip endpoints that are off.
            self.add(
                fhir_endpoint(
                    "ep-riverbend-fhir-legacy",
                    "Riverbend legacy FHIR API",
                    f"https://fhir-legacy.{system.domain}/dstu2",
                    org_id,
                    "off",
                )
            )
            endpoints.append("ep-riverbend-fhir-legacy")
        self.add(
            organization(
                org_id,
                system.name,
                npi=self.new_npi("1"),
                type_code="prov",
                addr=self.site_address(hq),
                telecom=self.site_telecom(hq, system),
                endpoints=endpoints,
                active=system.active,
                alias=[system.alias] if system.alias else None,
            )
        )
        if system.independent:
            loc_id = self.add_location(hq, org_id, "OF", "bu", endpoints)
            self.offer(
                hq.specialties,
                Slot(system, org_id, [loc_id], hq.area_code, hq.state, system.active),
            )
        for site in system.sites:
            self.build_site(system, site, org_id)

    def build_site(self, system: System, site: Site, parent_id: str) -> None:
        org_id = f"org-{site.key}"
        direct_id = f"ep-{site.key}-direct"
        status = "suspended" if site.status == "suspended" else "active"
        self.add(
            direct_endpoint(
                direct_id,
                f"{site.name} Direct mailbox",
                f"{site.key.split('-', 1)[1]}@direct.{system.domain}",
                org_id,
                status,
            )
        )
        self.add(
            organization(
                org_id,
                site.name,
                npi=self.new_npi("1"),
                type_code="prov",
                addr=self.site_address(site),
                telecom=self.site_telecom(site, system),
                endpoints=[direct_id, f"ep-{system.key}-fhir"],
                part_of=parent_id,
            )
        )
        if site.hospital:
            building = self.add_location(site, org_id, "HOSP", "bu", [direct_id])
            for dept in site.depts:
                self.build_dept(system, site, dept, org_id, building)
        else:
            loc_id = self.add_location(site, org_id, "OF", "bu", [direct_id])
            self.offer(
                site.specialties,
                Slot(system, org_id, [loc_id], site.area_code, site.state, site.status == "active"),
            )

    def build_dept(
        self, system: System, site: Site, dept: Dept, hospital_org: str, building: str
    ) -> None:
        org_id = f"org-{site.key}-{dept.key}"
        self.add(
            organization(
                org_id,
                dept.name,
                npi=self.new_npi("1"),
                type_code="dept",
                addr=self.site_address(site),
                telecom=self.site_telecom(site, system),
                part_of=hospital_org,
            )
        )
        locations = [building]
        if dept.wing:
            wing_id = f"loc-{site.key}-{dept.key}"
            self.add(
                location(
                    wing_id,
                    f"{site.name} - {dept.wing}",
                    addr=self.site_address(site),
                    latitude=site.latitude,
                    longitude=site.longitude,
                    org_id=org_id,
                    type_code=dept.wing_type,
                    type_display=LOCATION_TYPES[dept.wing_type],
                    physical="wi",
                    part_of=building,
                    telecom=self.site_telecom(site, system),
                )
            )
            locations = [wing_id]
        self.offer(
            dept.specialties, Slot(system, org_id, locations, site.area_code, site.state, True)
        )

    def add_location(
        self, site: Site, org_id: str, type_code: str, physical: str, endpoints: list[str]
    ) -> str:
        loc_id = f"loc-{site.key}"
        self.add(
            location(
                loc_id,
                site.name,
                addr=self.site_address(site),
                latitude=site.latitude,
                longitude=site.longitude,
                org_id=org_id,
                type_code=type_code,
                type_display=LOCATION_TYPES[type_code],
                physical=physical,
                telecom=[phone(site.area_code, self.rng.randrange(100))],
                status=site.status,
                endpoints=endpoints,
                description="Temporarily closed for renovation"
                if site.status == "suspended"
                else None,
            )
        )
        return loc_id

    def site_address(self, site: Site) -> dict:
        return address(site.street, site.city, site.state, site.postal_code)

    def site_telecom(self, site: Site, system: System) -> list[dict]:
        return [
            phone(site.area_code, self.rng.randrange(100)),
            phone(site.area_code, self.rng.randrange(100), system="fax"),
            {"system": "url", "value": f"https://www.{system.domain}/", "use": "work"},
        ]
