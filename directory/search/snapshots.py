"""Search snapshots: the ordered match list of a sorted search, frozen on its first page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from ..errors import InvalidRequest
from ..models import Resource, SearchSnapshot, SearchSnapshotEntry
from .plan import SORT_FIELDS, Plan


def sort_order(plan: Plan) -> list:
    """ORDER BY for the plan's `_sort` keys."""
    keys = [
        F(SORT_FIELDS[key]).desc() if descending else F(SORT_FIELDS[key]).asc()
        for key, descending in plan.sort
    ]
    return [*keys, F("pk").asc()]  # ties broken by insertion order, so positions are stable


def create_snapshot(plan: Plan, rows: QuerySet) -> SearchSnapshot:
    """Freeze the ordered match list with one INSERT ... SELECT run inside the database."""
    now = timezone.now()
    with transaction.atomic():
        _purge_expired_snapshots(now)
        snapshot = SearchSnapshot.objects.create(
            expires=now + timedelta(seconds=settings.FHIR_SEARCH_SNAPSHOT_TTL),
            resource_type=plan.resource_type,
            total=0,
        )
        ranked = (
            rows.order_by()
            .annotate(pos=Window(RowNumber(), order_by=sort_order(plan)), row_pk=F("pk"))
            .values_list("pos", "row_pk")
        )
        select_sql, params = ranked.query.sql_with_params()
        snapshot_key = SearchSnapshotEntry._meta.get_field("snapshot").get_db_prep_value(
            snapshot.pk, connection
        )
        with connection.cursor() as cursor:
            cursor.execute(_snapshot_insert_sql(select_sql), [snapshot_key, *params])
            snapshot.total = cursor.rowcount
        snapshot.save(update_fields=["total"])
    return snapshot


def _snapshot_insert_sql(select_sql: str) -> str:
    quote = connection.ops.quote_name
    table = quote(SearchSnapshotEntry._meta.db_table)
    columns = ", ".join(quote(c) for c in ("snapshot_id", "position", "resource_pk"))
    # select_sql comes from the ORM compiler with every value as a bound parameter.
    return (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        f"SELECT %s, ranked.{quote('pos')} - 1, ranked.{quote('row_pk')} FROM ({select_sql}) ranked"
    )


def _purge_expired_snapshots(now: datetime, batch: int = 20):
    """Drop a few expired snapshots per new one, so cleanup never costs a request much."""
    expired = list(
        SearchSnapshot.objects.filter(expires__lt=now).values_list("pk", flat=True)[:batch]
    )
    if expired:
        SearchSnapshotEntry.objects.filter(snapshot_id__in=expired).delete()
        SearchSnapshot.objects.filter(pk__in=expired).delete()


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
    pks = list(
        SearchSnapshotEntry.objects.filter(snapshot=snapshot, position__gte=start, position__lt=end)
        .order_by("position")
        .values_list("resource_pk", flat=True)
    )
    live = Resource.objects.filter(pk__in=pks, resource_type=plan.resource_type, deleted=False)
    by_pk = {row.pk: row for row in live}
    return [by_pk[pk] for pk in pks if pk in by_pk]
