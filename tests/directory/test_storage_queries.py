"""The single-resource write path costs no more queries than before storage looped over kinds."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory import events, storage
from tests.factories import PractitionerFactory

pytestmark = pytest.mark.django_db

# Queries per write of a Practitioner, measured on the storage that named each index table
# (before issue 13's index-kind registry): (create, update, delete) per database vendor.
BEFORE = {"postgresql": (13, 15, 12), "sqlite": (12, 14, 12)}


def _queries(write) -> int:
    with CaptureQueriesContext(connection) as captured:
        write()
    return len(captured.captured_queries)


def test_writes_cost_no_more_queries_than_before_the_kind_registry(monkeypatch):
    # Storage's own queries: change listeners (the subscription outbox: one query per write,
    # tested in tests/subscriptions) are not part of the index-kind comparison.
    monkeypatch.setattr(events, "_listeners", [])
    content = PractitionerFactory.build()
    created = _queries(lambda: storage.create("Practitioner", content))
    logical_id = storage.create("Practitioner", PractitionerFactory.build()).row.logical_id
    body = {**json.loads(storage.read("Practitioner", logical_id).content), "active": False}
    updated = _queries(lambda: storage.update("Practitioner", logical_id, body))
    deleted = _queries(lambda: storage.delete("Practitioner", logical_id))
    create_before, update_before, delete_before = BEFORE[connection.vendor]
    assert created <= create_before
    assert updated <= update_before
    assert deleted <= delete_before


def test_every_registered_table_is_written_and_cleared():
    """The loop over kinds reaches every index table: an update leaves one set of rows."""
    from directory.search.index import TABLES

    content = PractitionerFactory.build()
    logical_id = storage.create("Practitioner", content).row.logical_id
    counts = {
        t.model: t.model.objects.filter(resource__logical_id=logical_id).count() for t in TABLES
    }
    storage.update("Practitioner", logical_id, {**content, "id": logical_id})
    again = {
        t.model: t.model.objects.filter(resource__logical_id=logical_id).count() for t in TABLES
    }
    assert again == counts and any(counts.values())
    storage.delete("Practitioner", logical_id)
    assert not any(t.model.objects.filter(resource__logical_id=logical_id).exists() for t in TABLES)
