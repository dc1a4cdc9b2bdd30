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

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    resource_type: str
    logical_id: str
    version_id: int
    interaction: str  # "create" | "update" | "delete"


# A listener takes the changes of one write at once: a bulk import announces a whole batch, so
# what a listener looks up for each (the subscriptions on a topic) it can look up once.
Listener = Callable[[list[Change]], None]
_listeners: list[Listener] = []


def register(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def changed(resource_type: str, logical_id: str, version_id: int, interaction: str) -> None:
    """Announce one change (called by storage inside the write's transaction)."""
    changed_many([Change(resource_type, logical_id, version_id, interaction)])


def changed_many(changes: list[Change]) -> None:
    """Announce several changes of one transaction, in order (a bulk import's batch)."""
    if not _listeners or not changes:
        return
    for listener in _listeners:
        listener(changes)
