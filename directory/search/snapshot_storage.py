"""How a snapshot's ordered resource ids are stored: arrays on PostgreSQL, rows elsewhere.

A row per position costs seconds to write for a million matches (every row and its index
entries); on PostgreSQL the ordered ids are aggregated into one array inside the database and
cut into chunks, so writing is a few hundred rows and a page reads one or two of them.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import connection
from django.db.models import F, Field, Model, QuerySet, Window
from django.db.models.functions import RowNumber

from ..models import SearchSnapshot, SearchSnapshotChunk, SearchSnapshotEntry


def uses_arrays() -> bool:
    return connection.vendor == "postgresql"


def store_ordered_pks(snapshot: SearchSnapshot, rows: QuerySet, order: list) -> int:
    """Write the ids of `rows` in `order` for the snapshot; returns how many there are."""
    if uses_arrays():
        return _store_chunks(snapshot, rows, order)
    return _store_entries(snapshot, rows, order)


def read_ordered_pks(snapshot: SearchSnapshot, start: int, end: int) -> list[int]:
    """The ids at positions [start, end) of the snapshot."""
    if uses_arrays():
        return _read_chunks(snapshot, start, end)
    return list(
        SearchSnapshotEntry.objects.filter(snapshot=snapshot, position__gte=start, position__lt=end)
        .order_by("position")
        .values_list("resource_pk", flat=True)
    )


def delete_stored_pks(snapshot_pks: list) -> None:
    """Drop the stored ids of these snapshots (both layouts: cheap when one is empty)."""
    SearchSnapshotChunk.objects.filter(snapshot_id__in=snapshot_pks).delete()
    SearchSnapshotEntry.objects.filter(snapshot_id__in=snapshot_pks).delete()


def _snapshot_key(model: type[Model], snapshot: SearchSnapshot) -> Any:
    field = cast(Field, model._meta.get_field("snapshot"))  # a ForeignKey, not a relation
    return field.get_db_prep_value(snapshot.pk, connection)


def _quoted(model: type[Model], *columns: str) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), ", ".join(quote(c) for c in columns)


# ---------------------------------------------------------------- PostgreSQL: chunked arrays


def _store_chunks(snapshot: SearchSnapshot, rows: QuerySet, order: list) -> int:
    from django.contrib.postgres.aggregates import ArrayAgg

    # array_agg(id ORDER BY ...) orders by definition, not by the accident of a sorted
    # subquery; the constant group key makes it one aggregate over the whole match list.
    ordered = (
        rows.order_by()
        .values("resource_type")
        .annotate(pks=ArrayAgg("pk", order_by=order))
        .values_list("pks")
    )
    select_sql, params = ordered.query.sql_with_params()
    table, columns = _quoted(SearchSnapshotChunk, "snapshot_id", "chunk", "resource_pks")
    size = SearchSnapshotChunk.SIZE
    # select_sql comes from the ORM compiler with every value as a bound parameter.
    sql = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        f"SELECT %s, part, agg.pks[part * {size} + 1 : (part + 1) * {size}] "
        f"FROM ({select_sql}) agg, generate_series(0, (cardinality(agg.pks) - 1) / {size}) part "
        "RETURNING cardinality(resource_pks)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_snapshot_key(SearchSnapshotChunk, snapshot), *params])
        return sum(length for (length,) in cursor.fetchall())


def _read_chunks(snapshot: SearchSnapshot, start: int, end: int) -> list[int]:
    size = SearchSnapshotChunk.SIZE
    if end <= start:
        return []
    chunks = (
        SearchSnapshotChunk.objects.filter(
            snapshot=snapshot, chunk__gte=start // size, chunk__lte=(end - 1) // size
        )
        .order_by("chunk")
        .values_list("resource_pks", flat=True)
    )
    joined = [pk for chunk in chunks for pk in chunk]
    offset = (start // size) * size
    return joined[start - offset : end - offset]


# ---------------------------------------------------------------- other databases: a row each


def _store_entries(snapshot: SearchSnapshot, rows: QuerySet, order: list) -> int:
    ranked = (
        rows.order_by()
        .annotate(pos=Window(RowNumber(), order_by=order), row_pk=F("pk"))
        .values_list("pos", "row_pk")
    )
    select_sql, params = ranked.query.sql_with_params()
    quote = connection.ops.quote_name
    table, columns = _quoted(SearchSnapshotEntry, "snapshot_id", "position", "resource_pk")
    # select_sql comes from the ORM compiler with every value as a bound parameter.
    sql = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        f"SELECT %s, ranked.{quote('pos')} - 1, ranked.{quote('row_pk')} FROM ({select_sql}) ranked"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_snapshot_key(SearchSnapshotEntry, snapshot), *params])
        return cursor.rowcount
