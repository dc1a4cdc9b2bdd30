"""Organization builders: providers, payers, networks, and affiliations between them."""

from __future__ import annotations

from collections.abc import Sequence

from .elements import concept, extension_reference, profiled, ref, without_empty
from .terminology import (
    LOCATION_REFERENCE_URL,
    NAIC_SYSTEM,
    NPI_SYSTEM,
    NUCC_SYSTEM,
    ORG_TYPE_SYSTEM,
    PLAN_NET_AFFILIATION_ROLE,
    PLAN_NET_ORG_TYPE,
    Specialty,
)


def organization(
    oid: str,
    name: str,
    *,
    npi: str,
    type_code: str,
    addr: dict,
    telecom: list,
    endpoints: Sequence[str] = (),
    part_of: str | None = None,
    active: bool = True,
    alias: list[str] | None = None,
) -> dict:
    type_display = {"prov": "Healthcare Provider", "dept": "Hospital Department"}.get(type_code)
    content = {
        "resourceType": "Organization",
        "id": oid,
        "identifier": [{"use": "official", "system": NPI_SYSTEM, "value": npi}],
        "active": active,
        "type": [concept(ORG_TYPE_SYSTEM, type_code, type_display)],
        "name": name,
        "alias": alias,
        "telecom": telecom,
        "address": [addr],
        "partOf": ref("Organization", part_of) if part_of else None,
        "endpoint": [ref("Endpoint", e) for e in endpoints] or None,
    }
    return without_empty(content)


def payer_organization(oid: str, name: str, *, naic: str, addr: dict, telecom: list) -> dict:
    """A health plan company (Plan-Net Organization, type `payer`)."""
    content = {
        "resourceType": "Organization",
        "id": oid,
        "meta": profiled("Organization"),
        "identifier": [{"use": "official", "system": NAIC_SYSTEM, "value": naic}],
        "active": True,
        "type": [concept(PLAN_NET_ORG_TYPE, "payer", "Payer")],
        "name": name,
        "telecom": telecom,
        "address": [addr],
    }
    return content


def network(nid: str, name: str, *, payer_id: str, area_ids: list[str]) -> dict:
    """A provider network (Plan-Net Network: active, type `ntwk`, partOf its payer, no telecom)."""
    return without_empty(
        {
            "resourceType": "Organization",
            "id": nid,
            "meta": profiled("Network"),
            "extension": [
                extension_reference(LOCATION_REFERENCE_URL, "Location", a) for a in area_ids
            ],
            "active": True,
            "type": [concept(PLAN_NET_ORG_TYPE, "ntwk", "Network")],
            "name": name,
            "partOf": ref("Organization", payer_id),
        }
    )


def organization_affiliation(
    aid: str,
    *,
    participating_id: str,
    primary_id: str | None,
    network_ids: list[str],
    role: str,
    specialties: list[Specialty],
    location_ids: list[str],
    service_ids: list[str],
) -> dict:
    """A Plan-Net OrganizationAffiliation: a provider organization's part in networks."""
    content = {
        "resourceType": "OrganizationAffiliation",
        "id": aid,
        "meta": profiled("OrganizationAffiliation"),
        "active": True,
        "organization": ref("Organization", primary_id) if primary_id else None,
        "participatingOrganization": ref("Organization", participating_id),
        "network": [ref("Organization", n) for n in network_ids],
        "code": [concept(PLAN_NET_AFFILIATION_ROLE, role)],
        "specialty": [concept(NUCC_SYSTEM, s.code, s.display) for s in specialties],
        "location": [ref("Location", lid) for lid in location_ids],
        "healthcareService": [ref("HealthcareService", sid) for sid in service_ids],
    }
    return without_empty(content)
