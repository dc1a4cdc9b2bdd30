"""OAuth error responses (RFC 6749 §5.2, RFC 7591 §3.2.2): a JSON body, never cached.

The client learns the error code only; the precise reason goes to the audit record.
"""

from __future__ import annotations

from typing import TypeVar

from django.http import JsonResponse
from django.http.response import HttpResponseBase

from common.outage import retry_after

R = TypeVar("R", bound=HttpResponseBase)

# error code -> HTTP status. invalid_client is 401: the client failed to authenticate.
STATUS = {
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_grant": 400,
    "invalid_scope": 400,
    "unauthorized_client": 400,
    "unsupported_grant_type": 400,
    "invalid_software_statement": 400,
    "unapproved_software_statement": 400,
    "invalid_client_metadata": 400,
    "temporarily_unavailable": 503,
}


class OAuthError(Exception):
    """An error the endpoint answers with; `reason` is for the audit, never for the client."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(f"{error}: {reason}")
        self.error = error
        self.reason = reason


def no_store(response: R) -> R:
    """Token and registration responses carry credentials: no cache may keep them."""
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def json_response(body: dict, status: int = 200) -> JsonResponse:
    return no_store(JsonResponse(body, status=status))


def error_response(error: OAuthError) -> JsonResponse:
    response = json_response({"error": error.error}, STATUS[error.error])
    if error.error == "invalid_client":
        response["WWW-Authenticate"] = 'Bearer realm="fhir-directory"'
    if response.status_code == 503:
        response["Retry-After"] = retry_after()
    return response
