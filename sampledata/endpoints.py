"""Endpoint builders: a FHIR REST endpoint and a Direct secure-messaging address."""

from __future__ import annotations

from .elements import coding, concept, ref
from .terminology import CONNECTION_SYSTEM, PAYLOAD_SYSTEM


def fhir_endpoint(eid: str, name: str, url: str, org_id: str, status: str = "active") -> dict:
    return {
        "resourceType": "Endpoint",
        "id": eid,
        "status": status,
        "connectionType": coding(CONNECTION_SYSTEM, "hl7-fhir-rest", "HL7 FHIR"),
        "name": name,
        "managingOrganization": ref("Organization", org_id),
        "payloadType": [concept(PAYLOAD_SYSTEM, "any", "Any")],
        "payloadMimeType": ["application/fhir+json"],
        "address": url,
    }


def direct_endpoint(eid: str, name: str, mailbox: str, org_id: str, status: str = "active") -> dict:
    return {
        "resourceType": "Endpoint",
        "id": eid,
        "status": status,
        "connectionType": coding(CONNECTION_SYSTEM, "direct-project", "Direct Project"),
        "name": name,
        "managingOrganization": ref("Organization", org_id),
        "payloadType": [concept(PAYLOAD_SYSTEM, "any", "Any")],
        "payloadMimeType": ["application/xml", "application/pdf"],
        "address": f"mailto:{mailbox}",
    }
