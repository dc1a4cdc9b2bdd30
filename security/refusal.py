"""Refusals: one reason code per failed check, a FHIR OperationOutcome for the client.

The reason code goes to the audit record so an operator can tell the failures apart; the client
gets the HTTP status, the FHIR issue code and a short message that reveals no internals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.http import HttpResponse

from common.outage import retry_after

FHIR_JSON = "application/fhir+json; charset=utf-8"


@dataclass(frozen=True)
class Reason:
    code: str  # audit reason code, e.g. "cert-revoked"
    status: int
    issue_code: str  # OperationOutcome.issue.code
    message: str  # what the client is told


# In check order (see README, "Security checks"). Each check raises only its own reasons.
REASONS = {
    r.code: r
    for r in [
        Reason("proxy-untrusted", 403, "security", "Requests must come through the TLS terminator"),
        Reason(
            "cert-header-malformed", 400, "security", "The client certificate could not be read"
        ),
        Reason("cert-missing", 401, "login", "A client certificate is required"),
        Reason("cert-untrusted", 403, "security", "The client certificate is not trusted"),
        Reason("cert-expired", 403, "security", "The client certificate has expired"),
        Reason("cert-not-yet-valid", 403, "security", "The client certificate is not yet valid"),
        Reason(
            "cert-wrong-usage",
            403,
            "security",
            "The client certificate is not valid for client authentication",
        ),
        Reason("cert-revoked", 403, "security", "The client certificate has been revoked"),
        Reason(
            "crl-unavailable",
            503,
            "transient",
            "Certificate revocation status cannot be checked at the moment; try again later",
        ),
        Reason(
            "client-unknown",
            403,
            "forbidden",
            "The client certificate does not belong to a registered client",
        ),
        Reason("client-suspended", 403, "forbidden", "This client is suspended"),
        Reason("key-missing", 401, "login", "An API key is required"),
        Reason("key-invalid", 401, "login", "The API key is not valid"),
        # Answered exactly like an unknown key: a different answer would let whoever holds a
        # stolen key confirm it is live. The audit keeps the precise reason.
        Reason("key-wrong-client", 401, "login", "The API key is not valid"),
        Reason("token-missing", 401, "login", "A bearer token is required"),
        Reason("token-invalid", 401, "login", "The bearer token is not valid"),
        Reason(
            "scope-missing", 403, "forbidden", "The token does not grant access to this interaction"
        ),
        Reason("spine-headers", 400, "invalid", "Required Spine headers are missing or wrong"),
        # A Subscription is its owner's alone: read and written one at a time, by id or search.
        Reason(
            "subscription-interaction",
            403,
            "forbidden",
            "Subscriptions are created, read, searched, updated and deleted one at a time by "
            "the client that owns them",
        ),
        # Another client's Subscription answers as if it did not exist.
        Reason("subscription-not-owner", 404, "not-found", "The resource is not known"),
        # Any check, and the API itself, when the database cannot answer (common/outage.py):
        # a check that could not be made refuses nobody's credentials.
        Reason(
            "database-unavailable",
            503,
            "transient",
            "The service is temporarily unavailable; try again later",
        ),
    ]
}


class Refusal(Exception):
    """Raised by a check; turned into an OperationOutcome response by the middleware."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.reason = REASONS[code]


def refusal_response(refusal: Refusal) -> HttpResponse:
    reason = refusal.reason
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": reason.issue_code, "diagnostics": reason.message}],
    }
    response = HttpResponse(json.dumps(body), status=reason.status, content_type=FHIR_JSON)
    if reason.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="fhir-directory"'
    if reason.status == 503:
        response["Retry-After"] = retry_after()
    return response
