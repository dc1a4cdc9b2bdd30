"""Read scale-out: FHIR resource reads go to a healthy replica, everything else to the primary.

A read goes to the primary when it runs inside a transaction on the primary, or when the same
request (or thread, outside requests) has already written: a client must see its own writes.
Replicas are eventually consistent: a read that is not one of those may miss a write made a
moment ago by someone else, and a keyset-paged search may not show, on a later page, a resource
written while the client paged. Each request sticks to one replica so its reads agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

from .replicas import ReplicaHealth

# Security state (keys, trust anchors, CRLs, sessions, lockouts, audit) must be current to the
# second: a retired key must stop working within SECURITY_CACHE_SECONDS. Only the directory's
# own tables are worth the replicas.
REPLICA_APP_LABELS = frozenset({"directory"})
# Written by a search's first page and read by the next request, from whatever worker: a
# lagging replica would answer "search results expired".
# Export and import jobs likewise: a status poll right after the kick-off must find its job.
PRIMARY_ONLY_MODELS = frozenset(
    {"searchsnapshot", "searchsnapshotentry", "searchsnapshotchunk", "exportjob", "importjob"}
)

_wrote: ContextVar[bool] = ContextVar("directory_db_wrote", default=False)
_replica: ContextVar[str | None] = ContextVar("directory_db_replica", default=None)


@contextmanager
def request_scope() -> Iterator[None]:
    """One request: nothing written yet, no replica chosen; restored afterwards."""
    wrote, replica = _wrote.set(False), _replica.set(None)
    try:
        yield
    finally:
        _wrote.reset(wrote)
        _replica.reset(replica)


def has_written() -> bool:
    return _wrote.get()


def configured_replicas() -> list[str]:
    """The replica aliases settings built from DATABASE_REPLICA_URLS, in order."""
    return [alias for alias in settings.DATABASES if alias.startswith("replica")]


class ReplicaRouter:
    """Django database router; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        primary: str = DEFAULT_DB_ALIAS,
        replicas: Sequence[str] | None = None,
        health: ReplicaHealth | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.primary = primary
        self.replicas = list(configured_replicas() if replicas is None else replicas)
        self.health = health or ReplicaHealth()
        self.rng = rng or random.Random()  # noqa: S311 - spreads load, not a secret

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        if not self.replicas or not self._may_lag(model) or self._must_see_writes():
            return self.primary
        return self._healthy_replica() or self.primary

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        # Django asks before every write (and select_for_update): from here on, read our writes.
        _wrote.set(True)
        return self.primary

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # replicas hold the same rows as the primary

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        return db == self.primary  # replicas follow the primary's schema by replication

    def _may_lag(self, model: type[Model]) -> bool:
        meta = model._meta
        return meta.app_label in REPLICA_APP_LABELS and meta.model_name not in PRIMARY_ONLY_MODELS

    def _must_see_writes(self) -> bool:
        return _wrote.get() or connections[self.primary].in_atomic_block

    def _healthy_replica(self) -> str | None:
        """The request's replica while it stays healthy, else a random healthy one."""
        chosen = _replica.get()
        if chosen is not None and self.health.is_healthy(chosen):
            return chosen
        candidates = [alias for alias in self.replicas if alias != chosen]
        for alias in self.rng.sample(candidates, len(candidates)):
            if self.health.is_healthy(alias):
                _replica.set(alias)
                return alias
        return None
