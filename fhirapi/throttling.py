"""Per-client request limits, checked by the view before any handler runs.

A rate (RATE_LIMIT_PER_MINUTE sustained, RATE_LIMIT_BURST at once) and a cap on requests in
flight (RATE_LIMIT_CONCURRENT), both keyed by the client the security middleware identified
(fhirapi.identity). Over either limit the answer is 429 with Retry-After, as an OperationOutcome.
If the shared store cannot be reached the request is refused with 503: limits fail closed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from directory.errors import FHIRError

from . import limitstore
from .identity import client_key

T = TypeVar("T")

logger = logging.getLogger(__name__)

# Where a taken in-flight slot is remembered until the request ends (the Django request, which
# the DRF request wraps and the view's dispatch sees).
_SLOT_ATTR = "_fhir_inflight_slot"
# A client over its in-flight cap can retry as soon as one of its requests ends.
CONCURRENCY_RETRY_SECONDS = 1
LIMITS_DOWN_RETRY_SECONDS = 5


class LimitsUnavailable(FHIRError):
    """The limit store did not answer: refuse rather than serve without limits."""

    status = 503
    code = "transient"

    def __init__(self) -> None:
        super().__init__("The service is temporarily unable to accept requests; try again later")
        self.retry_after = LIMITS_DOWN_RETRY_SECONDS


def _guarded(operation: Callable[..., T], *args: Any) -> T:
    """Run a store operation; a store failure becomes LimitsUnavailable (logged, not echoed)."""
    try:
        return operation(*args)
    except Exception as exc:
        logger.error("request limit store failed: %s", type(exc).__name__)
        raise LimitsUnavailable() from None


def _take(request: HttpRequest | Request, cost: int, counted: int = 0) -> int:
    """Count `cost` requests of this client against its rate; milliseconds to wait, or 0."""
    per_minute = settings.RATE_LIMIT_PER_MINUTE
    if per_minute <= 0 or cost <= 0:
        return 0
    interval_ms = max(1, 60_000 // per_minute)
    burst = max(1, settings.RATE_LIMIT_BURST)
    key = client_key(request)
    return _guarded(limitstore.store().take, key, interval_ms, burst, cost, counted)


class ClientRateThrottle(BaseThrottle):
    """RATE_LIMIT_PER_MINUTE per client with a burst of RATE_LIMIT_BURST; 0 turns it off."""

    def allow_request(self, request: Request, view: Any) -> bool:
        self.wait_ms = _take(request, 1)
        return self.wait_ms == 0

    def wait(self) -> float:
        return max(1, math.ceil(self.wait_ms / 1000))


class ClientConcurrencyThrottle(BaseThrottle):
    """At most RATE_LIMIT_CONCURRENT requests of one client in flight; 0 turns it off.

    The slot taken here is given back by `release_slot` when the view's dispatch ends, whatever
    happened; each slot also expires after RATE_LIMIT_SLOT_SECONDS in case its worker died.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.RATE_LIMIT_CONCURRENT
        if limit <= 0:
            return True
        key = client_key(request)
        ttl_ms = settings.RATE_LIMIT_SLOT_SECONDS * 1000
        token = _guarded(limitstore.store().acquire, key, limit, ttl_ms)
        if token is None:
            return False
        setattr(request._request, _SLOT_ATTR, (key, token))
        return True

    def wait(self) -> float:
        return CONCURRENCY_RETRY_SECONDS


THROTTLES = [ClientRateThrottle, ClientConcurrencyThrottle]


def charge(request: HttpRequest | Request, requests: int) -> None:
    """Count `requests` more against the client's rate (a Bundle's reads and searches, each the
    work of a request of its own), or refuse with 429 before any of them runs."""
    wait_ms = _take(request, requests, counted=1)  # the POST itself was counted on arrival
    if wait_ms:
        raise Throttled(wait=max(1, math.ceil(wait_ms / 1000)))


def release_slot(request: HttpRequest) -> None:
    """Give back the in-flight slot this request took, if any; never raises."""
    slot = getattr(request, _SLOT_ATTR, None)
    if slot is None:
        return
    delattr(request, _SLOT_ATTR)
    try:
        limitstore.store().release(*slot)
    except Exception as exc:
        # The slot's own deadline frees it; the response must not fail over bookkeeping.
        logger.warning("could not release an in-flight slot: %s", type(exc).__name__)
