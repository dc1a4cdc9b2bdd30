"""The outbox: one Event row per matching subscription, written in the change's transaction.

Storage calls `on_changes` inside the transaction of every create, update and delete
(directory/events.py). A change of a directory type is matched against the requested and active
subscriptions on its topic; each filter criteria is run by the search engine restricted to the
changed resource (`_id`), inside the same transaction, so it judges exactly the state written (for
a delete, the state being deleted). The worker (delivery.py) sends what the outbox holds; an event
row is deleted only after the subscriber answered 2xx, so a crash after the commit loses nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import router
from django.utils import timezone

from directory.events import Change
from directory.search import matching_rows

from . import resource, topics
from .models import Channel, Event


def on_changes(changes: list[Change]) -> None:
    """Event rows for the changes of one write, in order; the subscriptions on each topic are
    read once per call (a bulk import's batch of a thousand creates makes one query, not 1,000)."""
    channels: dict[tuple[str, ...], list[Channel]] = {}
    urls_of: dict[str, tuple[str, ...]] = {}  # the topics of each type, named once per call
    pending: list[Event] = []
    now = timezone.now()
    for change in changes:
        if change.resource_type == resource.RESOURCE_TYPE:
            resource.saved(change)
            channels.clear()  # a Subscription changed: later changes see it as it now is
            continue
        urls = urls_of.get(change.resource_type)
        if urls is None:
            urls = urls_of[change.resource_type] = tuple(topics.for_type(change.resource_type))
        if not urls:
            continue
        if urls not in channels:
            # Requested ones too: a change between the POST and the handshake is not lost.
            live = (Channel.REQUESTED, Channel.ACTIVE)
            channels[urls] = list(Channel.objects.filter(status__in=live, topic__in=urls))
        pending += [_event(c, change, now) for c in channels[urls] if _matches(c, change)]
    if pending:
        Event.objects.bulk_create(pending)


def probe(changes: list[Change]) -> tuple[str, list[Any]] | None:
    """Whether a requested or active subscription is on the topics of these changes, as SQL a
    writer may run within its own statement (directory/events.py); None when `on_changes` has
    to run regardless (a Subscription changed) or asks the database nothing (no topic)."""
    if any(change.resource_type == resource.RESOURCE_TYPE for change in changes):
        return None
    urls = tuple(sorted({url for c in changes for url in topics.for_type(c.resource_type)}))
    if not urls:
        return None
    sql, params = _exists(router.db_for_write(Channel), urls)
    return sql, list(params)


# Few topics: a compiled query for each set of them a write can name.
@lru_cache(maxsize=64)
def _exists(using: str, urls: tuple[str, ...]) -> tuple[str, tuple[Any, ...]]:
    """The lookup `on_changes` makes, as an EXISTS (the same conditions, compiled once)."""
    live = (Channel.REQUESTED, Channel.ACTIVE)
    rows = Channel.objects.filter(status__in=live, topic__in=urls).values("pk")
    sql, params = rows.query.get_compiler(using).as_sql()
    return f"EXISTS ({sql})", tuple(params)


def _matches(channel: Channel, change: Change) -> bool:
    filters = json.loads(channel.filters)
    if not filters:
        return True
    for criteria in filters:  # several filters: any one matching is enough
        resource_type, pairs = resource.split_criteria(criteria)
        if resource_type != change.resource_type:
            continue
        if matching_rows(resource_type, [*pairs, ("_id", change.logical_id)], limit=1):
            return True
    return False


def _event(channel: Channel, change: Change, now: datetime) -> Event:
    return Event(
        channel=channel,
        resource_type=change.resource_type,
        logical_id=change.logical_id,
        version_id=change.version_id,
        interaction=change.interaction,
        occurred=now,
    )
