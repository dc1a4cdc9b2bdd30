"""Bulk loading: create many resources fast (fixtures, generators, imports), batch by batch.

Each batch is validated and extracted like a single write, then stored in one transaction: with
PostgreSQL COPY (several times faster than INSERTs), elsewhere with bulk INSERTs. The index rows
go to every table the registered index kinds declare (search/index/), so a new kind needs nothing
here.

With reference checks on (the default), a batch is refused whole, as a single write would be,
when a target is missing or when a target that a claimed Plan-Net/NDH profile constrains does not
conform to the element's targetProfile (profiles/targets.py, the API's rule), judged once the
batch is stored so a target anywhere in it counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from django.utils import timezone

from . import customparams, identifiers, indexing
from .errors import UnprocessableReference
from .models import Resource, ResourceVersion
from .profiles import targets
from .search.index import TABLES
from .storage import aborted_by_database, check_id, dumps, missing_resources, new_id, stamped
from .validation import validate_resource

# The columns COPY fills in the version tables, in the order `_version_rows` gives them.
_RESOURCE_COLUMNS = (
    "id",
    "resource_type",
    "logical_id",
    "version_id",
    "last_updated",
    "deleted",
    "content",
    "sort_name",
)
_VERSION_COLUMNS = (
    "resource_id",
    "resource_type",
    "logical_id",
    "version_id",
    "last_updated",
    "method",
    "content",
)

# A validated new resource: (type, logical id, content, its index rows).
Prepared = tuple[str, str, dict[str, Any], indexing.IndexRows]
# One ready to store: (type, logical id, stamped JSON text, its index rows).
NewRow = tuple[str, str, str, indexing.IndexRows]

# Tries of a batch the database aborted as a deadlock's victim before the error stands.
BATCH_ATTEMPTS = 3


def bulk_load(
    items: Iterable[tuple[str, dict[str, Any]]],
    *,
    batch_size: int = 1000,
    check_references: bool = True,
) -> int:
    """Create many resources fast (fixtures, generators); ids in the content are kept.

    Items must come in dependency order: a reference may point at an earlier item or an existing
    resource. Each batch is one transaction. `check_references` also judges targetProfiles.
    """
    total = 0
    batch: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            total += _load_batch(batch, check_references)
            batch = []
    if batch:
        total += _load_batch(batch, check_references)
    return total


def _load_batch(batch: list[tuple[str, dict[str, Any]]], check_references: bool) -> int:
    now = timezone.now()
    prepared: list[Prepared] = []
    customparams.ensure_fresh()  # extract with the custom parameters other workers stored
    for resource_type, content in batch:
        logical_id = check_id(content.get("id") or new_id())
        valid = validate_resource(resource_type, {**content, "id": logical_id}, canonical=False)
        customparams.before_store(resource_type, logical_id, valid)
        prepared.append((resource_type, logical_id, valid, indexing.extract(resource_type, valid)))
    new_rows = [
        (rtype, lid, dumps(stamped(content, lid, 1, now)), rows)
        for rtype, lid, content, rows in prepared
    ]
    for attempt in range(BATCH_ATTEMPTS):
        try:
            with transaction.atomic():
                if check_references:
                    _check_batch_references(prepared)
                identifiers.check_unique_batch(
                    [(rtype, lid, content) for rtype, lid, content, _ in prepared]
                )
                store_new(new_rows, now)
                if check_references:
                    _check_batch_targets(prepared, now)
        except OperationalError as exc:
            if attempt + 1 < BATCH_ATTEMPTS and aborted_by_database(exc):
                continue
            raise
        break
    return len(prepared)


@dataclass(frozen=True)
class Written:
    """A resource row just written (COPY, INSERT or UPDATE): its new version and index rows
    are still to store."""

    pk: int
    resource_type: str
    logical_id: str
    version_id: int
    method: str
    text: str
    rows: indexing.IndexRows


def store_new(new_rows: list[NewRow], now: datetime, methods: list[str] | None = None) -> list[int]:
    """Resources, first versions and index rows of checked new ids (rtype, id, text, IndexRows);
    the caller holds the transaction. `methods` is each first version's method (POST unless
    given: an update that creates is a PUT). The new rows' primary keys, in order."""
    pks = insert_resources(new_rows, now)
    store_versions(first_versions(new_rows, pks, methods), now)
    return pks


def insert_resources(new_rows: list[NewRow], now: datetime) -> list[int]:
    """The resource rows alone (version 1) of checked new ids; their primary keys, in order."""
    if connection.vendor == "postgresql":
        return _copy_new_resources(new_rows, now)
    return _bulk_create_new_resources(new_rows, now)


def first_versions(
    new_rows: list[NewRow], pks: list[int], methods: list[str] | None = None
) -> list[Written]:
    methods = methods or ["POST"] * len(new_rows)
    return [
        Written(pk, rtype, lid, 1, method, text, rows)
        for pk, method, (rtype, lid, text, rows) in zip(pks, methods, new_rows, strict=True)
    ]


def store_versions(written: list[Written], now: datetime) -> None:
    """The version rows and index rows of resource rows just written, one COPY (or one bulk
    INSERT) per table. Index rows the resources had before must be gone already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _copy(cursor, ResourceVersion, _VERSION_COLUMNS, list(_version_rows(written, now)))
            for table in TABLES:
                rows = [
                    row
                    for item in written
                    for row in table.copy_rows(
                        item.pk, item.resource_type, item.rows.rows[table.model]
                    )
                ]
                _copy(cursor, table.model, table.copy_columns, rows)
        return
    ResourceVersion.objects.bulk_create(
        [
            ResourceVersion(
                resource_id=item.pk,
                resource_type=item.resource_type,
                logical_id=item.logical_id,
                version_id=item.version_id,
                last_updated=now,
                method=item.method,
                content=item.text,
            )
            for item in written
        ],
        batch_size=500,
    )
    # The index writers read a row's pk and type only.
    indexing.insert_rows(
        [(Resource(pk=item.pk, resource_type=item.resource_type), item.rows) for item in written]
    )


def _bulk_create_new_resources(new_rows: list[NewRow], now: datetime) -> list[int]:
    resources = [
        Resource(
            resource_type=rtype,
            logical_id=lid,
            version_id=1,
            last_updated=now,
            content=text,
            sort_name=rows.sort_name,
        )
        for rtype, lid, text, rows in new_rows
    ]
    Resource.objects.bulk_create(resources, batch_size=500)
    return [r.pk for r in resources]


def _copy_new_resources(new_rows: list[NewRow], now: datetime) -> list[int]:
    """PostgreSQL COPY: several times faster than INSERTs for generated directories."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Resource._meta.db_table, len(new_rows)],
        )
        pks = [pk for (pk,) in cursor.fetchall()]
        items = list(zip(pks, new_rows, strict=True))
        _copy(cursor, Resource, _RESOURCE_COLUMNS, _resource_rows(items, now))
    return pks


def _copy(
    cursor: CursorWrapper,
    model: type[Model],
    columns: tuple[str, ...],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    """One COPY of the rows into the model's table; none for no rows (a statement saved for each
    index table a batch's types never fill)."""
    rows = list(rows)
    if not rows:
        return
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    database = cursor.db
    started = time.monotonic()
    # COPY runs on psycopg's own cursor: wrapped, a duplicate key is Django's IntegrityError (as
    # from an INSERT), which callers know how to answer, not a raw psycopg error.
    with database.wrap_database_errors, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    if database.queries_logged:
        # Logged like every other statement, so statement counts (tests, debug) see COPY too.
        elapsed = time.monotonic() - started
        database.queries_log.append({"sql": f"{sql} -- {len(rows)} rows", "time": f"{elapsed:.3f}"})


def _resource_rows(items: list[tuple[int, NewRow]], now: datetime) -> Iterator[tuple[Any, ...]]:
    for pk, (rtype, lid, text, rows) in items:
        yield (pk, rtype, lid, 1, now, False, text, rows.sort_name)


def _version_rows(written: list[Written], now: datetime) -> Iterator[tuple[Any, ...]]:
    for item in written:
        yield (
            item.pk,
            item.resource_type,
            item.logical_id,
            item.version_id,
            now,
            item.method,
            item.text,
        )


def _check_batch_references(prepared: list[Prepared]) -> None:
    """Refuse the batch unless every target is in it or live; the live ones stay locked (FOR KEY
    SHARE) until it commits, so a concurrent delete waits and then sees the new referrers. Targets
    stored by earlier batches are locked too: they are committed, so they could be deleted."""
    wanted = {
        ref.key for _, _, _, rows in prepared for _, ref in rows.references if not ref.external
    }
    wanted -= {(rtype, lid) for rtype, lid, _, _ in prepared}
    missing = missing_resources(wanted, hold=True)
    if missing:
        names = ", ".join(f"{t}/{i}" for t, i in sorted(missing)[:5])
        raise UnprocessableReference(f"Referenced resource does not exist: {names}")


def _check_batch_targets(prepared: list[Prepared], now: datetime) -> None:
    """Refuse the batch (422 naming each failing resource and element) unless every target its
    resources' claimed profiles constrain conforms to one of the element's target profiles: one
    `targets.judge` of the stored batch, two queries per target type at most. The batch's own
    resources were validated against the profiles they claim, so are not read nor judged again."""
    found = [(rtype, lid, content, targets.claims(content)) for rtype, lid, content, _ in prepared]
    found = [item for item in found if item[3]]
    if not found:
        return
    validated = {(rtype, lid): targets.claimed_known(valid) for rtype, lid, valid, _ in prepared}
    # As stored: a contained target is judged with its container's meta (targets.py).
    referrers = [(stamped(content, lid, 1, now), claims) for _, lid, content, claims in found]
    judged = targets.judge(referrers, validated)
    issues = [
        {**issue, "diagnostics": f"{rtype}/{lid}: {issue['diagnostics']}"}
        for (rtype, lid, _, _), result in zip(found, judged, strict=True)
        for issue in result.issues
    ]
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise UnprocessableReference(issues[0]["diagnostics"] + more, issues=issues)
