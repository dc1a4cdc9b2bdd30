"""Location builders: sites, buildings and wings, and a state as a coverage area."""

from __future__ import annotations

from collections.abc import Sequence

from .elements import concept, profiled, ref, without_empty
from .terminology import PHYSICAL_TYPE_SYSTEM, ROLE_CODE_SYSTEM


def location(
    lid: str,
    name: str,
    *,
    addr: dict,
    latitude: float,
    longitude: float,
    org_id: str,
    type_code: str,
    type_display: str,
    physical: str,
    telecom: list | None = None,
    part_of: str | None = None,
    status: str = "active",
    endpoints: Sequence[str] = (),
    description: str | None = None,
) -> dict:
    content = {
        "resourceType": "Location",
        "id": lid,
        "status": status,
        "name": name,
        "description": description,
        "type": [concept(ROLE_CODE_SYSTEM, type_code, type_display)],
        "telecom": telecom,
        "address": addr,
        "physicalType": concept(PHYSICAL_TYPE_SYSTEM, physical, PHYSICAL_TYPE_DISPLAY[physical]),
        "position": {"longitude": round(longitude, 6), "latitude": round(latitude, 6)},
        "managingOrganization": ref("Organization", org_id),
        "partOf": ref("Location", part_of) if part_of else None,
        "endpoint": [ref("Endpoint", e) for e in endpoints] or None,
    }
    return without_empty(content)


PHYSICAL_TYPE_DISPLAY = {
    "si": "Site",
    "bu": "Building",
    "wi": "Wing",
    "lvl": "Level",
    "jdn": "Jurisdiction",
}

LOCATION_TYPES = {
    "HOSP": "Hospital",
    "ER": "Emergency room",
    "OF": "Outpatient facility",
    "HU": "Hospital unit",
    "PC": "primary care clinic",
    "PEDC": "pediatrics clinic",
    "PHARM": "Pharmacy",
}


def area_location(lid: str, state: str) -> dict:
    """A state as a coverage area (Plan-Net Location; it forbids `mode`)."""
    return {
        "resourceType": "Location",
        "id": lid,
        "meta": profiled("Location"),
        "status": "active",
        "name": f"State of {state} service area",
        "physicalType": concept(PHYSICAL_TYPE_SYSTEM, "jdn", PHYSICAL_TYPE_DISPLAY["jdn"]),
        "address": {"state": state, "country": "US"},
    }
