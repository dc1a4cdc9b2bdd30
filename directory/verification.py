"""Verification of directory records, per the NDH: the status on the resource, the rest on file.

The status is the NDH `base-ext-verification-status` extension (a CodeableConcept from
NdhVerificationStatusVS: complete, incomplete, not-required), written into the resource through
storage like any other edit, so the API serves it, history keeps it and the NDH
`verification-status` search parameter indexes it.

"Last verified on, by whom, how" is a VerificationRecord row per act, written in the same
transaction. NDH models that as a VerificationResult (NdhVerification profile: lastPerformed,
validationProcess), but VerificationResult is not a type this server serves, and the "whom" is a
staff account, not a FHIR resource a VerificationResult could reference; NDH defines no
extension for the date, actor or method. The row also makes the admin's "not verified in N days"
filter an index lookup (resource, time) instead of parsing every resource's JSON.
"""

from __future__ import annotations

import json

from django.db import transaction

from . import storage
from .errors import InvalidRequest
from .models import VerificationRecord

EXTENSION_URL = "http://hl7.org/fhir/us/ndh/StructureDefinition/base-ext-verification-status"
STATUS_SYSTEM = "http://hl7.org/fhir/us/ndh/CodeSystem/NdhVerificationStatusCS"
STATUSES = {"complete": "Complete", "incomplete": "Incomplete", "not-required": "Not Required"}
# How it was verified: the FHIR validation-process codes NDH's VerificationProcessVS draws on.
PROCESS_SYSTEM = "http://terminology.hl7.org/CodeSystem/validation-process"
PROCESSES = {
    "primary": "Primary source",
    "multi": "Multiple sources",
    "standalone": "Standalone (the record itself)",
    "in-context": "In context (against related records)",
    "edit-check": "Edit check",
    "valueset": "Value set check",
}


def status_extension(status: str) -> dict:
    return {
        "url": EXTENSION_URL,
        "valueCodeableConcept": {
            "coding": [{"system": STATUS_SYSTEM, "code": status, "display": STATUSES[status]}]
        },
    }


def with_status(content: dict, status: str) -> dict:
    """The resource with exactly one verification-status extension, set to `status`."""
    others = [e for e in content.get("extension", []) if e.get("url") != EXTENSION_URL]
    return {**content, "extension": [*others, status_extension(status)]}


def current_status(content: dict) -> str | None:
    for extension in content.get("extension", []):
        if extension.get("url") == EXTENSION_URL:
            codings = extension.get("valueCodeableConcept", {}).get("coding", [])
            return next((c.get("code") for c in codings if c.get("system") == STATUS_SYSTEM), None)
    return None


def verify(
    resource_type: str, logical_id: str, *, status: str, process: str, actor: str, note: str = ""
) -> VerificationRecord:
    """Record one verification: the resource's status through storage, and who, when, how."""
    if status not in STATUSES:
        raise InvalidRequest(f"Unknown verification status '{status}'", expression=["status"])
    if process not in PROCESSES:
        raise InvalidRequest(f"Unknown verification process '{process}'", expression=["process"])
    with transaction.atomic():
        current = storage.read(resource_type, logical_id)
        content = json.loads(current.live_content())
        written = storage.update(
            resource_type,
            logical_id,
            with_status(content, status),
            if_match=str(current.version_id),
        ).row
        return VerificationRecord.objects.create(
            resource=written,
            resource_type=resource_type,
            logical_id=logical_id,
            version_id=written.version_id,
            status=status,
            process=process,
            actor=actor,
            note=note[:500],
        )
