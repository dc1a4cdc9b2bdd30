"""HTTP-layer FHIR errors, kept free of DRF view imports so parsers and negotiation can use them."""

from __future__ import annotations

from directory.errors import FHIRError


class PayloadTooLarge(FHIRError):
    status = 413
    code = "too-long"


class NotAcceptable(FHIRError):
    status = 406
    code = "not-supported"


class UnsupportedMediaType(FHIRError):
    status = 415
    code = "not-supported"


def outcome(severity: str, code: str, diagnostics: str) -> dict:
    """A one-issue OperationOutcome."""
    issue = {"severity": severity, "code": code, "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}
