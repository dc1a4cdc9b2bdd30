"""Django's PostgreSQL backend with a health check that costs no round trip on a busy connection.

`CONN_HEALTH_CHECKS` makes Django run `SELECT 1` before each request reuses a kept-alive
connection. On a read by id that was one of three round trips (issue 10). A connection whose
server went away (restart, failover, terminated backend) is seen without one: the server's
closing FIN or its FATAL message makes the idle socket readable, and a healthy idle connection
has nothing to read. So a connection that was checked less than `IDLE_SECONDS` ago and has
nothing waiting on its socket is taken as usable. Anything else gets Django's `SELECT 1`: input
waiting (that FATAL message, or a notification), a longer idle (a firewall may have dropped the
connection silently), or a failed statement before. A connection that fails a query all the
same answers that request with 503 and is replaced before the next (Django's errors_occurred).
"""

from __future__ import annotations

import select
import time

from django.db.backends.postgresql import base

# Longer idle than this and the connection is tested with a round trip, as Django does.
IDLE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    _checked_at = 0.0

    def connect(self) -> None:
        super().connect()
        self._checked_at = time.monotonic()

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        now = time.monotonic()
        recent = now - self._checked_at < IDLE_SECONDS
        self._checked_at = now
        # After a failed statement Django asks too: then always the real check.
        if recent and not self.errors_occurred and not _input_waiting(connection.fileno()):
            return True
        return super().is_usable()


def _input_waiting(fd: int) -> bool:
    """Whether the server wrote to an idle connection (or closed it): never blocks."""
    try:
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return True  # let the real check decide
    return bool(readable)
