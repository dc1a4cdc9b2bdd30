"""A write load of several client threads that records every attempt and what it was told."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import requests

from .fhir import FhirClient, id_of, marker, organization

RECOVERY_LIMIT = 2.0  # seconds from the fault ending to every request passing
SLOWEST_ANSWER = 5.0  # seconds: more than the connect timeouts would mean a hang


@dataclass(frozen=True)
class Attempt:
    sent: float  # time.monotonic()
    done: float
    status: int | None  # None: no HTTP answer at all
    name: str  # the unique name the create carried
    logical_id: str | None = None
    retry_after: str | None = None
    issue_code: str | None = None
    error: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def attempt_create(fhir: FhirClient) -> Attempt:
    name, sent = marker(), time.monotonic()
    try:
        response = fhir.create(organization(name))
    except requests.RequestException as error:
        return Attempt(sent, time.monotonic(), None, name, error=type(error).__name__)
    done = time.monotonic()
    if response.ok:
        return Attempt(sent, done, response.status_code, name, logical_id=id_of(response))
    issue = _issue_code(response)
    return Attempt(
        sent, done, response.status_code, name, None, response.headers.get("Retry-After"), issue
    )


def _issue_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if body.get("resourceType") != "OperationOutcome":
        return None
    return body["issue"][0]["code"]


class WriteLoad:
    """`threads` clients creating resources back to back until stopped."""

    def __init__(self, fhir: FhirClient, threads: int = 4):
        self.fhir = fhir
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            attempt = attempt_create(self.fhir)
            with self._lock:
                self.attempts.append(attempt)
            if attempt.status is None or attempt.status >= 500:
                time.sleep(0.05)  # a real client backs off a little before trying again

    def __enter__(self) -> WriteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a load thread hung"

    def snapshot(self) -> list[Attempt]:
        with self._lock:
            return list(self.attempts)


def check_outage(attempts: list[Attempt], back: float, stored: dict[str, str]) -> str:
    """Asserts what an outage may do to a write load; returns the figures for the record.

    Every request answered (201, or 503 transient with Retry-After; never another status, never
    slower than SLOWEST_ANSWER), every request sent RECOVERY_LIMIT after `back` acknowledged, and
    every acknowledged create in `stored` (logical id -> content of version 1).
    """
    statuses = Counter(a.status for a in attempts)
    assert {a.error for a in attempts if a.status is None} == set(), "requests went unanswered"
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[503] > 0, "the outage was not seen: the fault was not injected"
    for refused in (a for a in attempts if a.status == 503):
        assert refused.issue_code == "transient"
        assert refused.retry_after and refused.retry_after.isdigit()
    slowest = max(a.done - a.sent for a in attempts)
    assert slowest < SLOWEST_ANSWER, f"a request took {slowest:.1f} s"
    late_failures = [a for a in attempts if a.sent > back + RECOVERY_LIMIT and not a.acknowledged]
    assert late_failures == [], f"still failing {RECOVERY_LIMIT} s after the service returned"
    first_after = min(a.done for a in attempts if a.acknowledged and a.sent >= back)
    acknowledged = [a for a in attempts if a.acknowledged]
    lost = [a for a in acknowledged if a.name not in stored.get(a.logical_id, "")]
    assert lost == [], f"{len(lost)} acknowledged writes lost"
    return (
        f"{len(attempts)} attempts: {statuses[201]} acknowledged, {statuses[503]} x 503, "
        f"lost 0, slowest answer {slowest:.2f} s, first success {first_after - back:.2f} s "
        "after the service returned"
    )
