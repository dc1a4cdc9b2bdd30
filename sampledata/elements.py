"""FHIR data types every resource builder uses: codings, references, contacts, meta."""

from __future__ import annotations

from .terminology import PLAN_NET_PROFILE


def coding(system: str, code: str, display: str | None = None) -> dict:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str, display: str | None = None) -> dict:
    return {"coding": [coding(system, code, display)]}


def ref(resource_type: str, logical_id: str, display: str | None = None) -> dict:
    found = {"reference": f"{resource_type}/{logical_id}"}
    if display:
        found["display"] = display
    return found


def phone(area_code: str, line: int, *, system: str = "phone") -> dict:
    """A fictional number: 555-0100..0199 is reserved for fiction in every US area code."""
    return {"system": system, "value": f"({area_code}) 555-01{line % 100:02d}", "use": "work"}


def address(line: str, city: str, state: str, postal_code: str) -> dict:
    return {
        "use": "work",
        "type": "both",
        "line": [line],
        "city": city,
        "state": state,
        "postalCode": postal_code,
        "country": "US",
    }


def profiled(kind: str) -> dict:
    """`meta` claiming a Plan-Net profile; the builders below fill what that profile requires."""
    return {"profile": [PLAN_NET_PROFILE[kind]]}


def extension_reference(url: str, resource_type: str, logical_id: str) -> dict:
    return {"url": url, "valueReference": ref(resource_type, logical_id)}


def without_empty(content: dict) -> dict:
    return {k: v for k, v in content.items() if v not in (None, [], {})}
