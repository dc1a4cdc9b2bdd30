"""Taking turns with background job threads on SQLite's in-memory test database.

That database is shared between threads in shared-cache mode, where a reader meeting another
connection's write fails at once ("database table is locked") instead of waiting on the busy
timeout as a database file does. On SQLite a test therefore lets a job thread run only between
its own requests; on PostgreSQL requests and jobs overlap freely.
"""

from __future__ import annotations

import contextlib
import threading
from types import ModuleType
from typing import Any

from django.db import connection


class JobTurns:
    """One lock a job module's thread and the test's requests take in turn (SQLite only)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def between_runs(self) -> Any:
        return self.lock if connection.vendor == "sqlite" else contextlib.nullcontext()

    def wrap(self, monkeypatch: Any, module: ModuleType) -> None:
        """Make `module._run_in_thread` hold the lock while the job runs (SQLite only)."""
        if connection.vendor != "sqlite":
            return
        run = module._run_in_thread

        def exclusive(job_id: Any) -> None:
            with self.lock:
                run(job_id)

        monkeypatch.setattr(module, "_run_in_thread", exclusive)
