"""A write's rows in one statement (PostgreSQL): the same rows the ORM statements wrote."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from directory import events, onestatement, storage
from directory.models import Resource, ResourceVersion
from directory.search.index import TABLES
from tests.factories import PractitionerFactory

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite keeps the ORM inserts"
)


def _stored(logical_id: str) -> dict:
    """Every row of the resource, its versions and index tables, without their keys."""
    row = Resource.objects.get(resource_type="Practitioner", logical_id=logical_id)
    content = row.content
    versions = [
        (v.version_id, v.method, v.content, v.last_updated)
        for v in ResourceVersion.objects.filter(resource=row).order_by("version_id")
    ]
    tables = {
        table.model.__name__: sorted(
            tuple(item[column] for column in table.copy_columns[1:])
            for item in table.model.objects.filter(resource=row).values()
        )
        for table in TABLES
    }
    return {
        "row": (row.version_id, row.deleted, row.sort_name, content),
        "versions": versions,
        "tables": tables,
        "updated": row.last_updated,
    }


class _Undo(Exception):
    pass


def _written_then_undone(write, logical_id: str) -> dict:
    """What a write stores, read back before it is rolled back (the NPI is free again)."""
    try:
        with transaction.atomic():
            write()
            stored = _stored(logical_id)
            raise _Undo
    except _Undo:
        return stored


def _both_ways(monkeypatch, write, logical_id: str) -> tuple[dict, dict]:
    """The rows of one write in one statement, then through the ORM SQLite uses."""
    moment = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: moment)
    ours = _written_then_undone(write, logical_id)
    monkeypatch.setattr(onestatement, "connections", {"default": _Vendor(connection, "sqlite")})
    theirs = _written_then_undone(write, logical_id)
    monkeypatch.undo()
    assert ours["updated"] == moment
    return ours, theirs


@postgres_only
def test_one_statement_creates_what_the_orm_inserts_wrote(monkeypatch):
    content, logical_id = PractitionerFactory.build(), storage.new_id()
    ours, theirs = _both_ways(
        monkeypatch,
        lambda: storage.create("Practitioner", content, logical_id=logical_id),
        logical_id,
    )
    assert ours == theirs
    assert sum(len(rows) for rows in ours["tables"].values()) > 5  # a real spread of rows


@postgres_only
def test_one_statement_updates_what_the_orm_statements_wrote(monkeypatch):
    first = PractitionerFactory.build()
    logical_id = storage.create("Practitioner", first).row.logical_id
    before = _stored(logical_id)["tables"]
    second = {**PractitionerFactory.build(), "id": logical_id}
    second["identifier"] = first["identifier"]  # the NPI stays; names, addresses change
    ours, theirs = _both_ways(
        monkeypatch, lambda: storage.update("Practitioner", logical_id, second), logical_id
    )
    assert ours == theirs
    assert [v[0] for v in ours["versions"]] == [1, 2] and ours["row"][0] == 2
    # The first version's rows are gone, not kept beside the second's.
    assert ours["tables"] != before


@postgres_only
def test_a_revived_id_is_written_in_one_statement_too(monkeypatch):
    logical_id = storage.create("Practitioner", PractitionerFactory.build()).row.logical_id
    storage.delete("Practitioner", logical_id)
    again = {**PractitionerFactory.build(), "id": logical_id}
    ours, theirs = _both_ways(
        monkeypatch, lambda: storage.update("Practitioner", logical_id, again), logical_id
    )
    assert ours == theirs and ours["row"][:2] == (3, False)


@postgres_only
def test_the_row_returned_is_the_stored_row():
    row = storage.create("Practitioner", PractitionerFactory.build()).row
    assert row.pk == Resource.objects.get(logical_id=row.logical_id).pk
    assert row.version_id == 1 and not row._state.adding
    row.sort_name = "changed"
    row.save()  # an UPDATE of the stored row, not a second INSERT
    assert Resource.objects.get(pk=row.pk).sort_name == "changed"


@postgres_only
def test_a_create_stores_in_one_statement(monkeypatch):
    monkeypatch.setattr(events, "_listeners", [])
    with CaptureQueriesContext(connection) as captured:
        storage.create("Practitioner", PractitionerFactory.build())
    # The NPI's lock and uniqueness check read; everything stored goes in one statement.
    statements = [q["sql"] for q in captured.captured_queries]
    writes = [sql for sql in statements if sql.startswith(("INSERT", "UPDATE", "WITH", "COPY"))]
    assert len(writes) == 1 and writes[0].startswith("WITH r AS (INSERT"), statements


@postgres_only
def test_an_update_stores_in_one_statement(monkeypatch):
    monkeypatch.setattr(events, "_listeners", [])
    content = PractitionerFactory.build()
    logical_id = storage.create("Practitioner", content).row.logical_id
    with CaptureQueriesContext(connection) as captured:
        storage.update("Practitioner", logical_id, {**content, "id": logical_id})
    statements = [q["sql"] for q in captured.captured_queries]
    writes = [
        sql for sql in statements if sql.startswith(("INSERT", "UPDATE", "DELETE", "WITH", "COPY"))
    ]
    assert len(writes) == 1 and writes[0].startswith("WITH r AS (UPDATE"), statements


@postgres_only
def test_a_duplicate_id_is_an_integrity_error_and_leaves_nothing():
    logical_id = storage.create("Practitioner", PractitionerFactory.build()).row.logical_id
    before = ResourceVersion.objects.count()
    with pytest.raises(IntegrityError), transaction.atomic():
        storage.create("Practitioner", PractitionerFactory.build(), logical_id=logical_id)
    assert ResourceVersion.objects.count() == before


class _Vendor:
    """A connection that reports another vendor (to take the ORM branch on PostgreSQL)."""

    def __init__(self, wrapped, vendor: str) -> None:
        self._wrapped = wrapped
        self.vendor = vendor

    def __getattr__(self, name):
        return getattr(self._wrapped, name)
