"""OperationOutcome responses for every failure under /fhir, whichever layer raised it."""

from __future__ import annotations

import json
import logging
import math
import sys

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from common.outage import is_database_unavailable, retry_after
from directory.errors import FHIRError
from security.context import context_of
from security.refusal import REASONS

from .exceptions import outcome
from .timeouts import as_timeout

logger = logging.getLogger("fhirapi")

FHIR_JSON_UTF8 = "application/fhir+json; charset=utf-8"
GENERIC_500 = "The server could not process the request because of an internal error"


# DRF raises its own exception types from parsing, negotiation and method dispatch.
_DRF_CODES = {
    drf.ParseError: "invalid",
    drf.NotAuthenticated: "login",
    drf.AuthenticationFailed: "login",
    drf.PermissionDenied: "forbidden",
    drf.NotFound: "not-found",
    drf.MethodNotAllowed: "not-supported",
    drf.NotAcceptable: "not-supported",
    drf.UnsupportedMediaType: "not-supported",
    drf.Throttled: "throttled",
}


def _drf_outcome(exc: drf.APIException) -> tuple[dict, int]:
    code = next((c for kind, c in _DRF_CODES.items() if isinstance(exc, kind)), "processing")
    return outcome("error", code, str(exc.detail)), exc.status_code


def outcome_for(exc: Exception) -> tuple[dict, int]:
    """The OperationOutcome and status for an exception; unknown ones become a generic 500."""
    own = _own_answer(exc)
    if own is not None:
        return own
    if is_database_unavailable(exc):
        return _unavailable()
    return outcome("error", "exception", GENERIC_500), 500


def _answered_as_unavailable(exc: Exception) -> bool:
    """Whether outcome_for answers `exc` as the database being unavailable. An error with an
    answer of its own keeps it even when raised while handling a database error (a deadlocked
    transaction's 409 conflict)."""
    return _own_answer(exc) is None and is_database_unavailable(exc)


def _own_answer(exc: Exception) -> tuple[dict, int] | None:
    """The answer an error has by its own kind; None for one that has none."""
    if isinstance(exc, FHIRError):
        return exc.operation_outcome(), exc.status
    if isinstance(exc, drf.APIException):
        return _drf_outcome(exc)
    if isinstance(exc, Http404):
        return outcome("error", "not-found", "The requested resource was not found"), 404
    if isinstance(exc, PermissionDenied):
        return outcome("error", "forbidden", "Access to this resource is not allowed"), 403
    if isinstance(exc, RequestDataTooBig):
        return outcome("error", "too-long", "The request body is too large"), 413
    if isinstance(exc, SuspiciousOperation):
        return outcome("error", "security", "The request was rejected as malformed"), 400
    return None


def _unavailable() -> tuple[dict, int]:
    """The security checks' own answer when the database is down: one mapping for both."""
    reason = REASONS["database-unavailable"]
    return outcome("error", reason.issue_code, reason.message), reason.status


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF exception handler: every error becomes an OperationOutcome, never a DRF error shape."""
    exc = as_timeout(exc)
    body, status = outcome_for(exc)
    unavailable = _answered_as_unavailable(exc)
    view = type(context.get("view")).__name__
    if unavailable:
        # Expected while the database is down or restarting; the kind is enough to tell.
        logger.warning("Database unavailable in %s: %s", view, type(exc).__name__)
        _audit_outcome(context, "database-unavailable")
    elif status == 500:
        logger.error("Unhandled error in %s", view, exc_info=exc)
    set_rollback()
    headers = {}
    wait = retry_after() if unavailable else _retry_after(exc)
    if wait:
        headers["Retry-After"] = str(wait)
    return Response(body, status=status, headers=headers)


def _retry_after(exc: Exception) -> int | None:
    """Whole seconds to wait (rounded up, never 0) for refusals that say when to come back."""
    # DRF's Throttled sets .wait (its stubs omit it); our own errors say retry_after.
    wait = getattr(exc, "wait" if isinstance(exc, drf.Throttled) else "retry_after", None)
    return max(1, math.ceil(wait)) if wait is not None else None


def _audit_outcome(context: dict, code: str) -> None:
    request = context.get("request")
    if request is not None:
        context_of(request).outcome = code


def _plain_outcome_response(body: dict, status: int) -> HttpResponse:
    return HttpResponse(json.dumps(body), status=status, content_type=FHIR_JSON_UTF8)


def _is_fhir_path(request: HttpRequest) -> bool:
    return request.path == "/fhir" or request.path.startswith("/fhir/")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler404: OperationOutcome under /fhir, Django's own page elsewhere (admin)."""
    if _is_fhir_path(request):
        body = outcome("error", "not-found", f"No FHIR endpoint at {request.path}")
        return _plain_outcome_response(body, 404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler400: a SuspiciousOperation (an unknown Host, a malformed cookie or
    multipart body) outside any view. Under /fhir an OperationOutcome naming no detail."""
    if _is_fhir_path(request):
        body = outcome("error", "security", "The request was rejected as malformed")
        return _plain_outcome_response(body, 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler403 for refusals raised outside DRF views."""
    if _is_fhir_path(request):
        body = outcome("error", "forbidden", "Access to this resource is not allowed")
        return _plain_outcome_response(body, 403)
    return defaults.permission_denied(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500 for errors that escape DRF (middleware, rendering).

    Django calls it while handling the error, so the error is still the one in flight: a cancelled
    statement or a database outage answers 503 with Retry-After, as in the view.
    """
    error = sys.exc_info()[1] or Exception()
    timed_out = as_timeout(error)
    if isinstance(timed_out, FHIRError) and _is_fhir_path(request):
        response = _plain_outcome_response(timed_out.operation_outcome(), timed_out.status)
        response["Retry-After"] = str(_retry_after(timed_out))
        return response
    if is_database_unavailable(error):
        response = _unavailable_response(request)
        response["Retry-After"] = retry_after()
        return response
    if _is_fhir_path(request):
        return _plain_outcome_response(outcome("error", "exception", GENERIC_500), 500)
    return defaults.server_error(request)


def _unavailable_response(request: HttpRequest) -> HttpResponse:
    if _is_fhir_path(request):
        return _plain_outcome_response(*_unavailable())
    reason = REASONS["database-unavailable"]
    return HttpResponse(reason.message, status=reason.status, content_type="text/plain")
