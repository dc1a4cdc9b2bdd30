"""Resource change events: storage announces every create, update and delete to listeners.

Listeners run inside the write's transaction, so whatever they record (the subscription outbox,
`subscriptions/outbox.py`) commits or rolls back with the resource itself: no change can be
stored without its event, and no event can outlive a write that failed. A listener that raises
aborts the write. `directory` knows nothing of its listeners; they register at start-up
(an app's `ready()`), which keeps the imports running one way.

`bulkload.bulk_load` (fixtures, generated directories, PostgreSQL COPY) announces nothing: those
loads fill an empty or offline directory, not changes a subscriber waits for. A bulk import
(`bulkimport.py`, `$import`) does announce each resource it stores: it feeds a live directory.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    resource_type: str
    logical_id: str
    version_id: int
    interaction: str  # "create" | "update" | "delete"


# A listener takes the changes of one write at once: a bulk import announces a whole batch, so
# what a listener looks up for each (the subscriptions on a topic) it can look up once.
Listener = Callable[[list[Change]], None]
# What a listener may ask the database within the write's own statement: for these changes, SQL
# of a boolean (with its parameters) that is false when the listener has nothing to do, or None
# to be called regardless. A create then spends no round trip of its own asking whether anyone
# subscribes (the answer is read in the same transaction, just earlier in it).
Probe = Callable[[list[Change]], tuple[str, list[Any]] | None]
_listeners: list[Listener] = []
_probes: dict[Listener, Probe] = {}


@dataclass(frozen=True)
class Asked:
    """A listener's probe for the changes of one write."""

    listener: Listener
    sql: str
    params: list[Any]


def register(listener: Listener, probe: Probe | None = None) -> None:
    if listener not in _listeners:
        _listeners.append(listener)
    if probe is not None:
        _probes[listener] = probe


def probes(changes: list[Change]) -> list[Asked]:
    """The probes the listeners ask for these changes (a writer that can run them within its
    own statement passes the listeners that answered false to `changed_many`)."""
    asked = []
    for listener in _listeners:
        probe = _probes.get(listener)
        found = probe(changes) if probe is not None else None
        if found is not None:
            asked.append(Asked(listener, *found))
    return asked


def changed(resource_type: str, logical_id: str, version_id: int, interaction: str) -> None:
    """Announce one change (called by storage inside the write's transaction)."""
    changed_many([Change(resource_type, logical_id, version_id, interaction)])


def changed_many(changes: list[Change], *, idle: Collection[Listener] = ()) -> None:
    """Announce several changes of one transaction, in order (a bulk import's batch); `idle`
    are listeners whose probe for exactly these changes answered false."""
    if not _listeners or not changes:
        return
    for listener in _listeners:
        if listener not in idle:
            listener(changes)
