"""Forcing an interleaving of concurrent requests over PostgreSQL, not hoping for one.

A request runs in a thread of its own (`Request`); a patched function holds one of them at a
chosen point inside its transaction (`held_after`), or makes two meet there (`meeting_before`),
while the test starts the other and waits until it is answered or waits for a row lock
(`finished_or_waiting`). SQLite serializes writers, so the tests using this are PostgreSQL's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from django.db import connection, connections

WAIT = 20  # seconds a step may take before the test gives up


class Request(threading.Thread):
    """One request sent from a thread of its own; `response` once it is answered."""

    def __init__(self, send: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.send = send
        self.response: Any = None

    def run(self) -> None:
        try:
            self.response = self.send()
        finally:
            connections.close_all()  # this thread's own, when it used the database directly


def lock_waiters() -> int:
    """Backends of this database waiting for a lock now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def finished_or_waiting(request: Request) -> None:
    """Return once `request` is answered or a backend of this database waits for a row lock."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if not request.is_alive() or lock_waiters():
            return
        time.sleep(0.05)
    raise AssertionError("the second request neither finished nor waited for a lock")


@contextmanager
def held_after(module: ModuleType, name: str, holds: Callable[..., bool]) -> Iterator[Any]:
    """Patch `module.name` so that a call `holds` accepts, once it has run, signals the event it
    yields and then waits for the test to set `release` (an attribute of that event)."""
    original = getattr(module, name)
    reached = threading.Event()
    release = threading.Event()
    reached.release = release  # type: ignore[attr-defined]

    def patched(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if holds(*args, **kwargs):
            reached.set()
            assert release.wait(WAIT), "the held request was never released"
        return result

    setattr(module, name, patched)
    try:
        yield reached
    finally:
        release.set()
        setattr(module, name, original)


@contextmanager
def meeting_before(module: ModuleType, name: str, parties: int) -> Iterator[threading.Barrier]:
    """Patch `module.name` so that its first `parties` calls each wait, before running, until
    all of them have arrived: what each did before the call (its locks) is done by then."""
    original = getattr(module, name)
    barrier = threading.Barrier(parties, timeout=WAIT)
    arrived = 0
    count = threading.Lock()

    def patched(*args: Any, **kwargs: Any) -> Any:
        nonlocal arrived
        with count:
            arrived += 1
            meets = arrived <= parties
        if meets:
            barrier.wait()
        return original(*args, **kwargs)

    setattr(module, name, patched)
    try:
        yield barrier
    finally:
        setattr(module, name, original)


def race(first: Request, reached: threading.Event, second: Request) -> None:
    """`first` runs to its hold; `second` runs until answered or blocked; then `first` goes on."""
    first.start()
    assert reached.wait(WAIT), "the first request never reached its hold"
    second.start()
    finished_or_waiting(second)
    reached.release.set()  # type: ignore[attr-defined]
    first.join(WAIT)
    second.join(WAIT)
    assert not first.is_alive() and not second.is_alive()
