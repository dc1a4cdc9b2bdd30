"""Search snapshots: the ordered match list of a sorted search, frozen on its first page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from ..errors import InvalidRequest
from ..models import Resource, SearchSnapshot
from .plan import SORT_FIELDS, Plan
from .snapshot_storage import delete_stored_pks, read_ordered_pks, store_ordered_pks

# Expired snapshots dropped per new one: bounded work per request; `purgesearches` does the rest.
PURGE_BATCH = 5


def sort_order(plan: Plan) -> list:
    """ORDER BY for the plan's `_sort` keys."""
    keys = [
        F(SORT_FIELDS[key]).desc() if descending else F(SORT_FIELDS[key]).asc()
        for key, descending in plan.sort
    ]
    return [*keys, F("pk").asc()]  # ties broken by insertion order, so positions are stable


def create_snapshot(plan: Plan, rows: QuerySet) -> SearchSnapshot:
    """Freeze the ordered match list, written inside the database in one statement."""
    now = timezone.now()
    purge_expired_snapshots(now, PURGE_BATCH)
    with transaction.atomic():
        snapshot = SearchSnapshot.objects.create(
            expires=now + timedelta(seconds=settings.FHIR_SEARCH_SNAPSHOT_TTL),
            resource_type=plan.resource_type,
            total=0,
        )
        snapshot.total = store_ordered_pks(snapshot, rows, sort_order(plan))
        snapshot.save(update_fields=["total"])
    return snapshot


def purge_expired_snapshots(now: datetime, batch: int | None = None) -> int:
    """Drop expired snapshots (at most `batch` of them); returns how many were dropped."""
    expired = SearchSnapshot.objects.filter(expires__lt=now).order_by("expires")
    pks = list(
        expired.values_list("pk", flat=True)[:batch]
        if batch
        else expired.values_list("pk", flat=True)
    )
    if pks:
        with transaction.atomic():
            delete_stored_pks(pks)
            SearchSnapshot.objects.filter(pk__in=pks).delete()
    return len(pks)


def load_snapshot(plan: Plan, state: dict) -> SearchSnapshot:
    """The unexpired snapshot a cursor names; an expired one means the search must be repeated."""
    snapshot = SearchSnapshot.objects.filter(
        pk=state.get("s"), resource_type=plan.resource_type, expires__gt=timezone.now()
    ).first()
    if snapshot is None:
        raise InvalidRequest(
            "search results expired, repeat the search", code="not-found", expression=["_cursor"]
        )
    return snapshot


def snapshot_rows(plan: Plan, snapshot: SearchSnapshot, start: int, end: int) -> list[Resource]:
    """Current versions of the resources at positions [start, end); deleted ones drop out."""
    pks = read_ordered_pks(snapshot, start, end)
    live = Resource.objects.filter(pk__in=pks, resource_type=plan.resource_type, deleted=False)
    by_pk = {row.pk: row for row in live}
    return [by_pk[pk] for pk in pks if pk in by_pk]
