"""Transactions stored together (directory/writebatch.py): few statements, and the rules that
follow from storing a Bundle as one write: one meta.lastUpdated for all its entries, unique
identifiers judged on the state the Bundle leaves, all or nothing on every failure."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections
from django.test.utils import CaptureQueriesContext

from directory import bulkload, events, storage
from directory.models import ResourceVersion
from tests.factories import FACTORIES, make_npi

from .conftest import send
from .test_transactions import (
    assert_outcome,
    bundle,
    call,
    org,
    post,
    put,
    statuses,
    stored_rows,
)

pytestmark = pytest.mark.django_db(transaction=True)

NPI_X, NPI_Y = make_npi(81), make_npi(82)
ENTRIES = 100


def practitioners_and_roles(pairs: int) -> dict:
    """`pairs` new Practitioners with an NPI each and a PractitionerRole pointing at each."""
    entries = []
    for n in range(pairs):
        urn = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
        practitioner = FACTORIES["Practitioner"].build(id=None)
        practitioner["identifier"] = [
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": make_npi(5000 + n)}
        ]
        role = {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": urn},
        }
        entries += [post(practitioner, urn), post(role)]
    return bundle("transaction", *entries)


def test_a_transaction_costs_under_one_statement_per_entry(api):
    """About ten statements per entry one by one; stored together, a handful per table."""
    with CaptureQueriesContext(connection) as captured:
        response = send(api, "POST", "/fhir", practitioners_and_roles(ENTRIES // 2))
    assert response.status_code == 200, response.content
    assert len(response.json()["entry"]) == ENTRIES
    assert len(captured.captured_queries) < ENTRIES  # < 1 statement per entry, all included
    assert ResourceVersion.objects.count() == ENTRIES
    # The index rows are there: each role is found through its practitioner's reference.
    practitioner = response.json()["entry"][0]["resource"]["id"]
    found = send(api, "GET", f"/fhir/PractitionerRole?practitioner=Practitioner/{practitioner}")
    assert found.json()["total"] == 1


def test_every_entry_shares_one_last_updated(fhir):
    kept = FACTORIES["Organization"].create(id="org-shared", name="Before")
    gone = FACTORIES["Organization"].create(id="org-gone", name="Gone")
    response = fhir(
        "POST",
        json=bundle(
            "transaction",
            post(org("New One")),
            put(f"Organization/{kept['id']}", {**kept, "name": "After"}),
            call("DELETE", f"Organization/{gone['id']}"),
        ),
    )
    assert statuses(response) == ["201 Created", "200 OK", "204 No Content"]
    moments = {e["response"]["lastModified"] for e in response.json()["entry"][:2]}
    moments |= {e["resource"]["meta"]["lastUpdated"] for e in response.json()["entry"][:2]}
    deletion = ResourceVersion.objects.get(logical_id=gone["id"], method="DELETE")
    updated = ResourceVersion.objects.filter(logical_id=kept["id"]).latest("version_id")
    assert len(moments) == 1
    assert deletion.last_updated == updated.last_updated


def test_two_entries_claiming_one_npi_refuse_the_transaction(fhir):
    before = stored_rows()
    response = fhir(
        "POST",
        json=bundle("transaction", post(org("First", NPI_X)), post(org("Second", NPI_X))),
    )
    body = assert_outcome(response, 409, "duplicate")
    assert body["issue"][0]["expression"][0] == "Bundle.entry[1]"
    assert NPI_X in body["issue"][0]["diagnostics"]
    assert stored_rows() == before


def test_an_npi_held_outside_the_bundle_is_refused(fhir):
    FACTORIES["Organization"].create(id="org-holder", identifier=[org("x", NPI_Y)["identifier"][0]])
    before = stored_rows()
    response = fhir("POST", json=bundle("transaction", post(org("Taker", NPI_Y))))
    assert_outcome(response, 409, "duplicate")
    assert stored_rows() == before


def test_an_entry_may_take_the_npi_another_entry_frees(fhir):
    holder = FACTORIES["Organization"].create(
        id="org-freeing", identifier=[org("x", NPI_Y)["identifier"][0]]
    )
    released = {key: value for key, value in holder.items() if key != "identifier"}
    response = fhir(
        "POST",
        json=bundle(
            "transaction", post(org("Taker", NPI_Y)), put("Organization/org-freeing", released)
        ),
    )
    assert statuses(response) == ["201 Created", "200 OK"]
    taker = response.json()["entry"][0]["resource"]["id"]
    found = fhir("GET", f"Organization?identifier=http://hl7.org/fhir/sid/us-npi|{NPI_Y}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [taker]


def test_a_conflicting_update_rolls_the_whole_transaction_back(fhir):
    kept = FACTORIES["Organization"].create(id="org-stale", name="Current")
    before = stored_rows()
    stale = put("Organization/org-stale", {**kept, "name": "Stale"})
    stale["request"]["ifMatch"] = 'W/"7"'
    response = fhir("POST", json=bundle("transaction", post(org("Would Be New")), stale))
    body = assert_outcome(response, 412)
    assert body["issue"][0]["expression"][0] == "Bundle.entry[1]"
    assert stored_rows() == before
    assert fhir("GET", "Organization/org-stale").json()["name"] == "Current"


def test_listeners_hear_each_stored_entry_once_in_order(fhir, monkeypatch):
    heard: list[events.Change] = []
    monkeypatch.setattr(events, "_listeners", [heard.extend])
    FACTORIES["Organization"].create(id="org-heard", name="Before")
    heard.clear()
    current = fhir("GET", "Organization/org-heard").json()
    response = fhir(
        "POST",
        json=bundle(
            "transaction",
            put("Organization/org-heard", {**current, "name": "After"}),
            post(org("Heard")),
            put("Organization/org-new", {**org("New"), "id": "org-new"}),
        ),
    )
    created = response.json()["entry"][1]["resource"]["id"]
    assert [(c.logical_id, c.version_id, c.interaction) for c in heard] == [
        (created, 1, "create"),  # FHIR order: POSTs before PUTs
        ("org-heard", int(current["meta"]["versionId"]) + 1, "update"),
        ("org-new", 1, "create"),
    ]
    # The resource row and its newest version row agree on the number announced.
    latest = ResourceVersion.objects.filter(logical_id="org-heard").latest("version_id")
    assert latest.version_id == heard[1].version_id == latest.resource.version_id


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serializes writers: no race to lose"
)
def test_an_id_created_concurrently_is_retried_as_an_update(fhir, monkeypatch):
    """Another transaction creates the PUT's new id between this one's lock and its COPY: the
    COPY's duplicate key rolls everything back and the transaction runs again, as an update."""
    original = bulkload.insert_resources
    raced: list[bool] = []

    def racing_insert(new_rows, now):
        if not raced:
            raced.append(True)
            thread = threading.Thread(target=_create_elsewhere)
            thread.start()
            thread.join()
        return original(new_rows, now)

    monkeypatch.setattr(bulkload, "insert_resources", racing_insert)
    body = {"resourceType": "Organization", "id": "org-raced", "name": "Ours"}
    response = fhir(
        "POST",
        json=bundle("transaction", post(org("Alongside")), put("Organization/org-raced", body)),
    )
    assert statuses(response) == ["201 Created", "200 OK"]
    assert fhir("GET", "Organization/org-raced").json()["meta"]["versionId"] == "2"
    assert ResourceVersion.objects.filter(logical_id="org-raced").count() == 2


def _create_elsewhere() -> None:
    try:
        storage.update(
            "Organization",
            "org-raced",
            {"resourceType": "Organization", "id": "org-raced", "name": "Theirs"},
        )
    finally:
        connections.close_all()


def test_a_transaction_that_keeps_colliding_is_a_conflict(fhir, monkeypatch):
    from fhirapi import transactions

    def collide(run, entries):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(transactions, "_apply", collide)
    body = assert_outcome(fhir("POST", json=bundle("transaction", post(org("X")))), 409)
    assert "send it again" in body["issue"][0]["diagnostics"]
