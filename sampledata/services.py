"""HealthcareService builder and its Plan-Net delivery method."""

from __future__ import annotations

from collections.abc import Sequence

from .elements import concept, profiled, ref, without_empty
from .terminology import (
    DELIVERY_METHOD_SYSTEM,
    DELIVERY_METHOD_URL,
    NUCC_SYSTEM,
    SERVICE_CATEGORY_DISPLAY,
    SERVICE_CATEGORY_SYSTEM,
    SERVICE_TYPE_DISPLAY,
    SERVICE_TYPE_SYSTEM,
    VIRTUAL_MODALITY_SYSTEM,
    Specialty,
)


def delivery_method(modalities: list[str] | None) -> dict:
    """Plan-Net delivery-method extension: physical, or virtual with its modalities."""
    if modalities is None:
        parts = [
            {
                "url": "type",
                "valueCodeableConcept": concept(DELIVERY_METHOD_SYSTEM, "physical", "Physical"),
            }
        ]
    else:
        parts = [
            {
                "url": "type",
                "valueCodeableConcept": concept(DELIVERY_METHOD_SYSTEM, "virtual", "Virtual"),
            }
        ]
        parts += [
            {
                "url": "virtualModalities",
                "valueCodeableConcept": concept(VIRTUAL_MODALITY_SYSTEM, m),
            }
            for m in modalities
        ]
    return {"url": DELIVERY_METHOD_URL, "extension": parts}


def healthcare_service(
    sid: str,
    name: str,
    *,
    org_id: str,
    location_id: str,
    category: str,
    service_type: str | None,
    specialties: Sequence[Specialty],
    virtual: list[str] | None,
    telecom: list,
) -> dict:
    """A Plan-Net HealthcareService offered by an organization at one of its locations."""
    methods = [delivery_method(None)] + ([delivery_method(virtual)] if virtual else [])
    content = {
        "resourceType": "HealthcareService",
        "id": sid,
        "meta": profiled("HealthcareService"),
        "extension": methods,
        "active": True,
        "providedBy": ref("Organization", org_id),
        "category": [
            concept(SERVICE_CATEGORY_SYSTEM, category, SERVICE_CATEGORY_DISPLAY[category])
        ],
        "type": [concept(SERVICE_TYPE_SYSTEM, service_type, SERVICE_TYPE_DISPLAY[service_type])]
        if service_type
        else None,
        "specialty": [concept(NUCC_SYSTEM, s.code, s.display) for s in specialties],
        "location": [ref("Location", location_id)],
        "name": name,
        "telecom": telecom,
    }
    return without_empty(content)
