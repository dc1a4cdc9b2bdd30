"""Whether a read replica can take queries: a cheap check, remembered for a few seconds."""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from django.db import DatabaseError, connections

# Long enough that a busy worker does not probe on every query, short enough that a replica
# that comes back is used again soon and one that died is not retried on every request.
CHECK_TTL_SECONDS = 3.0


def open_connection(alias: str) -> Any:
    """This thread's driver connection to `alias`, or None when none is open."""
    return connections[alias].connection


def dropped_by_server(raw: object) -> bool:
    """True when an idle connection's socket has something to read: the server has hung up.

    Between queries the client has read everything; a server that shuts down sends a last
    message and closes, so readability alone tells us without a round trip.
    """
    fileno = getattr(raw, "fileno", None)
    if fileno is None:
        return False
    try:
        poller = select.poll()
        poller.register(fileno(), select.POLLIN)
    except (DatabaseError, OSError, ValueError):
        return True  # the driver already knows the connection is closed
    return bool(poller.poll(0))


def probe(alias: str) -> bool:
    """Connect, or ask an open connection for SELECT 1; False on any database error."""
    wrapper = connections[alias]
    try:
        if wrapper.connection is None:
            # The connection the next query would open anyway; failing here means we fall back
            # to the primary instead of failing that query.
            wrapper.ensure_connection()
        else:
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        discard(alias)
        return False


def discard(alias: str) -> None:
    """Close this thread's connection to `alias` so the next use reconnects."""
    wrapper = connections[alias]
    if wrapper.in_atomic_block:
        return
    with suppress(DatabaseError):
        wrapper.close()


class ReplicaHealth:
    """Per-process memory of which replicas answered, refreshed every `ttl` seconds."""

    def __init__(
        self,
        *,
        ttl: float = CHECK_TTL_SECONDS,
        check: Callable[[str], bool] = probe,
        connection_of: Callable[[str], object] = open_connection,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.check = check
        self.connection_of = connection_of
        self.clock = clock
        self._results: dict[str, tuple[bool, float]] = {}

    def is_healthy(self, alias: str) -> bool:
        """Whether reads may go to `alias` now."""
        raw = self.connection_of(alias)
        if raw is not None and dropped_by_server(raw):
            discard(alias)
            self.forget(alias)
            raw = None
        known = self._fresh_result(alias)
        if known is False:
            return False
        if known is None or raw is None:
            return self._check_now(alias)
        return True

    def forget(self, alias: str) -> None:
        self._results.pop(alias, None)

    def _fresh_result(self, alias: str) -> bool | None:
        ok, checked_at = self._results.get(alias, (None, 0.0))
        if ok is None or self.clock() - checked_at >= self.ttl:
            return None
        return ok

    def _check_now(self, alias: str) -> bool:
        ok = self.check(alias)
        self._results[alias] = (ok, self.clock())
        return ok
