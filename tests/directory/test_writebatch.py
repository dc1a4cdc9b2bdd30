"""WriteBatch on its own (no deferred_integrity around it): it checks references itself, stores
creates and updates with one shared time, and a refused batch leaves nothing behind."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from directory import storage
from directory.errors import UnprocessableReference
from directory.models import Resource, ResourceVersion, TokenIndex
from directory.writebatch import EntryFailed, WriteBatch
from tests.factories import FACTORIES, NPI_SYSTEM, make_npi

pytestmark = pytest.mark.django_db


def organization(name: str, npi: str | None = None) -> dict:
    body: dict = {"resourceType": "Organization", "name": name, "active": True}
    if npi:
        body["identifier"] = [{"system": NPI_SYSTEM, "value": npi}]
    return body


def test_creates_and_updates_are_stored_with_one_time_and_their_index_rows():
    FACTORIES["Organization"].create(id="wb-old", name="Old Name")
    current = json.loads(storage.read("Organization", "wb-old").content)
    batch = WriteBatch()
    with transaction.atomic():
        batch.create("a", "Organization", "wb-new", organization("New", make_npi(91)))
        batch.update("b", "Organization", "wb-old", {**current, "name": "Renamed"})
        stored = batch.flush()
    assert [(row.logical_id, created) for row, created in stored] == [
        ("wb-new", True),
        ("wb-old", False),
    ]
    new, old = (storage.read("Organization", lid) for lid in ("wb-new", "wb-old"))
    assert new.last_updated == old.last_updated == batch.now
    assert old.version_id == int(current["meta"]["versionId"]) + 1
    assert json.loads(old.content)["name"] == "Renamed"
    latest = ResourceVersion.objects.filter(logical_id="wb-old").latest("version_id")
    assert (latest.version_id, latest.method) == (old.version_id, "PUT")
    assert TokenIndex.objects.filter(resource=new, code=make_npi(91)).exists()


def test_a_reference_to_nothing_refuses_the_batch_without_deferred_checks():
    before = Resource.objects.count()
    role = {
        "resourceType": "PractitionerRole",
        "active": True,
        "practitioner": {"reference": "Practitioner/nobody"},
    }
    with pytest.raises(UnprocessableReference), transaction.atomic():
        batch = WriteBatch()
        batch.create(0, "PractitionerRole", storage.new_id(), role)
        batch.flush()
    assert Resource.objects.count() == before


def test_an_identifier_claimed_twice_names_the_second_write():
    npi = make_npi(92)
    with pytest.raises(EntryFailed) as refused, transaction.atomic():
        batch = WriteBatch()
        batch.create("first", "Organization", storage.new_id(), organization("A", npi))
        batch.create("second", "Organization", storage.new_id(), organization("B", npi))
        batch.flush()
    assert refused.value.label == "second"
    assert refused.value.error.status == 409
