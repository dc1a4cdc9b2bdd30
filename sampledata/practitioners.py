"""Practitioner and PractitionerRole builders."""

from __future__ import annotations

from collections.abc import Sequence

from .elements import coding, concept, extension_reference, ref, without_empty
from .terminology import (
    DEGREE_DISPLAY,
    DEGREE_SYSTEM,
    NETWORK_REFERENCE_URL,
    NPI_SYSTEM,
    NUCC_SYSTEM,
    ROLE_DISPLAY,
    ROLE_SYSTEM,
    Specialty,
)


def practitioner(
    pid: str,
    *,
    npi: str,
    family: str,
    given: list[str],
    gender: str,
    degree: str,
    telecom: list,
    active: bool = True,
    prefix: str | None = None,
    license_state: str | None = None,
) -> dict:
    name = {"use": "official", "family": family, "given": given}
    if prefix:
        name["prefix"] = [prefix]
    name["suffix"] = [degree]
    qualification = {
        "code": {
            "coding": [coding(DEGREE_SYSTEM, degree, DEGREE_DISPLAY[degree])],
            "text": DEGREE_DISPLAY[degree],
        },
    }
    if license_state:
        qualification["issuer"] = {"display": f"{license_state} state licensing board"}
    content = {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"use": "official", "system": NPI_SYSTEM, "value": npi}],
        "active": active,
        "name": [name],
        "telecom": telecom,
        "gender": gender,
        "qualification": [qualification],
    }
    return content


def practitioner_role(
    rid: str,
    *,
    practitioner_id: str,
    practitioner_name: str,
    org_id: str,
    location_ids: list[str],
    specialty: Specialty,
    telecom: list,
    endpoints: Sequence[str] = (),
    active: bool = True,
    network_ids: Sequence[str] = (),
    service_ids: Sequence[str] = (),
) -> dict:
    content = {
        "resourceType": "PractitionerRole",
        "id": rid,
        # Plan-Net network-reference: the networks in which this role is offered.
        "extension": [
            extension_reference(NETWORK_REFERENCE_URL, "Organization", n) for n in network_ids
        ],
        "active": active,
        "practitioner": ref("Practitioner", practitioner_id, practitioner_name),
        "organization": ref("Organization", org_id),
        "code": [concept(ROLE_SYSTEM, specialty.role, ROLE_DISPLAY[specialty.role])],
        "specialty": [concept(NUCC_SYSTEM, specialty.code, specialty.display)],
        "location": [ref("Location", lid) for lid in location_ids] or None,
        "healthcareService": [ref("HealthcareService", s) for s in service_ids],
        "telecom": telecom,
        "endpoint": [ref("Endpoint", e) for e in endpoints] or None,
    }
    return without_empty(content)
