"""A resource version's rows in one statement on PostgreSQL: resource, version, index rows.

`storage` wrote a create as one INSERT for the resource, one for its version and one per index
table holding rows, and an update as an UPDATE, a DELETE per index table its type can fill, the
version and the INSERTs: a round trip each, and each an ORM statement built and compiled. Under
load a round trip waits for the database backend to be scheduled; an Organization's create spent
more time in those waits than in all its Python (issue 10). Here the same rows go in one
statement of data-modifying CTEs (the resource row's RETURNING gives the others its primary
key), which also answers the change listeners' probes (events.py: whether anyone subscribes).
The rows, columns and values are those the ORM wrote; a duplicate id raises IntegrityError as
its INSERT did, and whatever fails aborts the caller's transaction as before.

Other databases (SQLite: no data-modifying CTEs) keep the ORM statements.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model

from . import indexing
from .models import Resource, ResourceVersion
from .search.index import TABLES, IndexTable
from .search.index.base import KEY_COLUMNS


def store(
    resource_type: str,
    logical_id: str,
    now: datetime,
    text: str,
    rows: indexing.IndexRows,
    method: str,
    *,
    current: Resource | None,
    probes: Sequence[tuple[str, list[Any]]] = (),
) -> tuple[Resource, list[bool]]:
    """Store a version: of a new id (`current` None: version 1), or of the locked row
    `current` (its old index rows replaced). The stored resource row, and each probe's answer
    (boolean SQL and its parameters, read in the same statement; true for every probe where
    they are not run)."""
    using = router.db_for_write(Resource)
    database = connections[using]
    version_id = current.version_id + 1 if current is not None else 1
    if database.vendor != "postgresql":
        row = _store_with_orm(resource_type, logical_id, now, text, rows, method, current)
        return row, [True] * len(probes)
    moment = Resource._meta.get_field("last_updated").get_db_prep_save(now, database)
    if current is None:
        params: list = [resource_type, logical_id, moment, text, rows.sort_name]
        replaced: tuple[int, ...] = ()
    else:
        params = [version_id, moment, text, rows.sort_name, current.pk]
        replaced = tuple(
            number
            for number, table in enumerate(TABLES)
            if table in indexing.tables_for(resource_type)
        )
        params += [current.pk] * len(replaced)
    params += [resource_type, logical_id, version_id, moment, method]
    shape = []
    for table in TABLES:
        values = rows.rows[table.model]
        shape.append(len(values))
        if values:
            fields = _value_fields(table)
            params.append(resource_type)
            for found in values:
                params += [
                    field.get_db_prep_save(value, database)
                    for field, value in zip(fields, found, strict=True)
                ]
    for _, probe_params in probes:
        params += probe_params
    statement = _statement(
        using, current is None, replaced, tuple(shape), tuple(sql for sql, _ in probes)
    )
    with database.cursor() as cursor:
        cursor.execute(statement, params)
        pk, *answers = cursor.fetchone()
    row = current if current is not None else Resource(pk=pk, logical_id=logical_id)
    row.resource_type = resource_type
    row.version_id = version_id
    row.last_updated = now
    row.deleted = False
    row.content = text
    row.sort_name = rows.sort_name
    row._state.adding = False  # stored: a later save() updates it
    row._state.db = using
    return row, [bool(answer) for answer in answers]


# Bounded: a shape is a tuple of row counts, and a resource with many names or identifiers
# makes one of its own.
@lru_cache(maxsize=512)
def _statement(
    using: str,
    new: bool,
    replaced: tuple[int, ...],
    shape: tuple[int, ...],
    probes: tuple[str, ...],
) -> str:
    """The statement for a new id or an update (its rows in the `replaced` index tables
    deleted), with `shape[n]` rows in the n-th index table (few shapes recur: each type's
    resources fill much the same tables), answering the probes too.

    A statement's parts see one snapshot: the deletes do not see the rows inserted beside them.
    """
    quote = connections[using].ops.quote_name
    resources, versions = quote(Resource._meta.db_table), quote(ResourceVersion._meta.db_table)
    if new:
        head = (
            f"r AS (INSERT INTO {resources} (resource_type, logical_id, version_id,"  # noqa: S608 - table names from the models
            " last_updated, deleted, content, sort_name)"
            " VALUES (%s, %s, 1, %s, false, %s, %s) RETURNING id, content)"
        )
    else:
        head = (
            f"r AS (UPDATE {resources} SET version_id = %s, last_updated = %s,"  # noqa: S608 - table names from the models
            " deleted = false, content = %s, sort_name = %s WHERE id = %s RETURNING id, content)"
        )
    ctes = [head]
    for number in replaced:
        cleared = quote(TABLES[number].model._meta.db_table)
        ctes.append(f"d{number} AS (DELETE FROM {cleared} WHERE resource_id = %s)")  # noqa: S608 - table names from the models
    # The content once on the wire: the version takes it from the row just written.
    ctes.append(
        f"v AS (INSERT INTO {versions} (resource_id, resource_type, logical_id,"  # noqa: S608 - table names from the models
        " version_id, last_updated, method, content)"
        " SELECT r.id, %s, %s, %s, %s, %s, r.content FROM r)"
    )
    for number, (table, count) in enumerate(zip(TABLES, shape, strict=True)):
        if not count:
            continue
        columns = ", ".join(quote(column) for column in table.copy_columns)
        tuples = ", ".join([_value_casts(table, using)] * count)
        ctes.append(
            f"i{number} AS (INSERT INTO {quote(table.model._meta.db_table)} ({columns})"  # noqa: S608 - names from the models, values as parameters
            f" SELECT r.id, %s, x.* FROM r, (VALUES {tuples}) AS x)"
        )
    answers = "".join(f", ({probe})" for probe in probes)
    return f"WITH {', '.join(ctes)} SELECT id{answers} FROM r"  # noqa: S608 - built above


@cache
def _value_fields(table: IndexTable) -> list[Field]:
    """The fields of a row's values as extraction gives them: param, then the value columns."""
    model: type[Model] = table.model
    fields = [model._meta.get_field(name) for name in (KEY_COLUMNS[-1], *table.columns)]
    return [field for field in fields if isinstance(field, Field)]


def _value_casts(table: IndexTable, using: str) -> str:
    """One VALUES tuple, each value cast to its column's base type: varchar without its length,
    as an explicit cast to varchar(n) would truncate a value the INSERT refuses."""
    connection = connections[using]
    casts = [
        re.sub(r"\(\d+(,\s*\d+)?\)", "", str(field.db_type(connection)))
        for field in _value_fields(table)
    ]
    return "(" + ", ".join(f"CAST(%s AS {cast})" for cast in casts) + ")"


def _store_with_orm(
    resource_type: str,
    logical_id: str,
    now: datetime,
    text: str,
    rows: indexing.IndexRows,
    method: str,
    current: Resource | None,
) -> Resource:
    version_id = current.version_id + 1 if current is not None else 1
    if current is None:
        # No savepoint of its own: a duplicate id (IntegrityError) aborts the caller's
        # transaction, which `update` retries whole.
        current = Resource.objects.create(
            resource_type=resource_type,
            logical_id=logical_id,
            version_id=version_id,
            last_updated=now,
            deleted=False,
            content=text,
            sort_name=rows.sort_name,
        )
    else:
        current.version_id = version_id
        current.last_updated = now
        current.deleted = False
        current.content = text
        current.sort_name = rows.sort_name
        current.save()
        indexing.delete_rows([current.pk], current.resource_type)
    ResourceVersion.objects.create(
        resource=current,
        resource_type=resource_type,
        logical_id=logical_id,
        version_id=version_id,
        last_updated=now,
        method=method,
        content=text,
    )
    indexing.insert_rows([(current, rows)])
    return current
