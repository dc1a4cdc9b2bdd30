"""Search snapshots: the ordered match list of a sorted search, frozen on its first page.

A client repeating the same sorted search within FHIR_SEARCH_SNAPSHOT_REUSE_SECONDS, with nothing
written since, gets its earlier snapshot back instead of a new copy of the match list; each client
holds at most FHIR_SEARCH_SNAPSHOTS_PER_CLIENT live snapshots, its oldest evicted first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet, Subquery
from django.utils import timezone

from ..errors import InvalidRequest
from ..models import Resource, ResourceVersion, SearchSnapshot
from . import near
from .plan import SORT_FIELDS, Plan
from .snapshot_storage import delete_stored_pks, read_ordered_pks, store_ordered_pks

# Expired snapshots dropped per new one: bounded work per request; `purgesearches` does the rest.
PURGE_BATCH = 5
# A write whose transaction began just before a snapshot was taken commits with an earlier
# timestamp: writes this close before a snapshot also stop it being reused.
WRITE_MARGIN = timedelta(seconds=1)


def sort_order(plan: Plan) -> list:
    """ORDER BY for the plan's `_sort` keys."""
    keys = [
        _sort_key(plan, key).desc() if descending else _sort_key(plan, key).asc()
        for key, descending in plan.sort
    ]
    return [*keys, F("pk").asc()]  # ties broken by insertion order, so positions are stable


def _sort_key(plan: Plan, key: str) -> F | Subquery:
    if key == near.SORT_KEY:  # distance to the `near` points, computed per row
        return near.sort_expression(plan)
    return F(SORT_FIELDS[key])


def first_page_snapshot(plan: Plan, rows: QuerySet, digest: str) -> SearchSnapshot:
    """The client's fresh snapshot of this same search, or a new one."""
    return reusable_snapshot(plan, digest) or create_snapshot(plan, rows, digest)


def reusable_snapshot(plan: Plan, digest: str) -> SearchSnapshot | None:
    """The owner's snapshot of the same search taken within the reuse window, if nothing was
    written since: its pages are then exactly what a new snapshot would hold."""
    window = settings.FHIR_SEARCH_SNAPSHOT_REUSE_SECONDS
    if not plan.owner or window <= 0:
        return None
    now = timezone.now()
    snapshot = (
        SearchSnapshot.objects.filter(
            owner=plan.owner,
            query_digest=digest,
            resource_type=plan.resource_type,
            created__gt=now - timedelta(seconds=window),
            expires__gt=now,
        )
        .order_by("-created")
        .first()
    )
    if snapshot is None or _written_since(snapshot.created - WRITE_MARGIN):
        return None
    return snapshot


def _written_since(moment: datetime) -> bool:
    # Any type: chained and _has filters make a search depend on other types' resources too.
    return ResourceVersion.objects.filter(last_updated__gte=moment).exists()


def create_snapshot(plan: Plan, rows: QuerySet, digest: str = "") -> SearchSnapshot:
    """Freeze the ordered match list, written inside the database in one statement."""
    now = timezone.now()
    purge_expired_snapshots(now, PURGE_BATCH)
    with transaction.atomic():
        snapshot = SearchSnapshot.objects.create(
            expires=now + timedelta(seconds=settings.FHIR_SEARCH_SNAPSHOT_TTL),
            resource_type=plan.resource_type,
            total=0,
            owner=plan.owner,
            query_digest=digest,
        )
        snapshot.total = store_ordered_pks(snapshot, rows, sort_order(plan))
        snapshot.save(update_fields=["total"])
    evict_over_cap(plan.owner)
    return snapshot


def evict_over_cap(owner: str) -> int:
    """Drop the owner's oldest snapshots beyond FHIR_SEARCH_SNAPSHOTS_PER_CLIENT.

    Evicting rather than refusing: clients never say they are done with a search, so refusing
    would lock a client out of sorted searches until its abandoned snapshots expire. A cursor
    into an evicted snapshot answers like an expired one: repeat the search.
    """
    cap = settings.FHIR_SEARCH_SNAPSHOTS_PER_CLIENT
    if not owner or cap <= 0:
        return 0
    newest_first = SearchSnapshot.objects.filter(owner=owner).order_by("-created", "-pk")
    evicted = list(newest_first.values_list("pk", flat=True)[cap:])
    if evicted:
        with transaction.atomic():
            delete_stored_pks(evicted)
            SearchSnapshot.objects.filter(pk__in=evicted).delete()
    return len(evicted)


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
    """The unexpired snapshot a cursor names, the requesting client's own; an expired or evicted
    one means the search must be repeated."""
    snapshot = SearchSnapshot.objects.filter(
        pk=state.get("s"),  # type: ignore[misc]  # absent "s" (None) matches no snapshot
        resource_type=plan.resource_type,
        owner=plan.owner,
        expires__gt=timezone.now(),
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
