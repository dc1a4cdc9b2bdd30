"""Schemathesis checks for the fuzzing run (loaded by `st run` through SCHEMATHESIS_HOOKS).

Every refusal under /fhir, whichever layer answers it, is a FHIR OperationOutcome that no cache
may keep. A 5xx fails `not_a_server_error` as well; this check says what the body was.
Schemathesis gives response headers with lowercase names and a list of values each.
"""

from __future__ import annotations

import json

import schemathesis

FHIR_JSON = "application/fhir+json"


@schemathesis.check
def error_is_operation_outcome(ctx, response, case) -> None:
    """A 4xx or 5xx answer is an OperationOutcome, as application/fhir+json, with no-store."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith(FHIR_JSON):
        raise AssertionError(f"{response.status_code} answered as '{content_type}'")
    cache_control = response.headers.get("cache-control", [""])[0]
    if cache_control != "no-store":
        raise AssertionError(f"{response.status_code} has Cache-Control '{cache_control}'")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} body is not JSON") from None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        raise AssertionError(f"{response.status_code} body is not an OperationOutcome")
    if not body.get("issue"):
        raise AssertionError(f"{response.status_code} OperationOutcome has no issue")
