"""Sorted searches cannot be used to fill the database: a client's repeated search reuses its
snapshot, and each client holds a bounded number of them. Over a real socket, as clients see it."""

from __future__ import annotations

import time

import pytest
import requests

from directory.models import SearchSnapshot
from tests.factories import PractitionerFactory

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/fhir+json"
SORTED = "/fhir/Practitioner?_sort=name&_count=1"


@pytest.fixture
def practitioners(db):
    created = [PractitionerFactory.create() for _ in range(5)]
    # Writes within a second of a snapshot (snapshots.WRITE_MARGIN) stop it being reused.
    time.sleep(1.1)
    return created


def _get(url: str, credentials, path: str = SORTED) -> requests.Response:
    target = path if path.startswith("http") else f"{url}{path}"
    return requests.get(target, headers={**credentials.http, "Accept": JSON}, timeout=10)


def _next(bundle: dict) -> str:
    return next(link["url"] for link in bundle["link"] if link["relation"] == "next")


def _outcome(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]


def test_forty_identical_searches_keep_one_snapshot(live_server, credentials, practitioners):
    bundles = [_get(live_server.url, credentials).json() for _ in range(40)]
    assert SearchSnapshot.objects.count() == 1
    assert {b["entry"][0]["resource"]["id"] for b in bundles} == {
        bundles[0]["entry"][0]["resource"]["id"]
    }
    # The reused snapshot still pages through every match exactly once.
    seen, bundle = [], bundles[-1]
    while True:
        seen.append(bundle["entry"][0]["resource"]["id"])
        if not any(link["relation"] == "next" for link in bundle["link"]):
            break
        bundle = _get(live_server.url, credentials, _next(bundle)).json()
    assert sorted(seen) == sorted(p["id"] for p in practitioners)


def test_clients_never_share_snapshots_or_cursors(
    live_server, credentials, other_credentials, practitioners
):
    mine = _get(live_server.url, credentials).json()
    theirs = _get(live_server.url, other_credentials).json()
    assert SearchSnapshot.objects.count() == 2
    assert len(set(SearchSnapshot.objects.values_list("owner", flat=True))) == 2
    # Another client's page link is no way into a snapshot: it must repeat the search itself.
    issue = _outcome(_get(live_server.url, other_credentials, _next(mine)), 400)
    assert "repeat the search" in issue["diagnostics"]
    assert _get(live_server.url, other_credentials, _next(theirs)).status_code == 200


def test_a_write_takes_a_new_snapshot(live_server, credentials, practitioners):
    _get(live_server.url, credentials)
    PractitionerFactory.create()
    after_write = _get(live_server.url, credentials).json()
    assert SearchSnapshot.objects.count() == 2
    assert after_write["total"] == len(practitioners) + 1, "a reused snapshot would miss it"


def test_reuse_ends_with_its_window(live_server, credentials, practitioners, settings):
    settings.FHIR_SEARCH_SNAPSHOT_REUSE_SECONDS = 2
    _get(live_server.url, credentials)
    _get(live_server.url, credentials)
    assert SearchSnapshot.objects.count() == 1
    time.sleep(2.1)
    _get(live_server.url, credentials)
    assert SearchSnapshot.objects.count() == 2


def test_snapshots_per_client_are_capped_oldest_evicted(
    live_server, credentials, other_credentials, practitioners, settings
):
    settings.FHIR_SEARCH_SNAPSHOTS_PER_CLIENT = 3
    theirs = _get(live_server.url, other_credentials).json()
    firsts = [
        _get(live_server.url, credentials, f"/fhir/Practitioner?_sort={order}&_count=1").json()
        for order in ("name", "-name", "_lastUpdated", "-_lastUpdated", "name&active=true")
    ]
    owners = list(SearchSnapshot.objects.values_list("owner", flat=True))
    assert len(owners) == 4 and len(set(owners)) == 2, "3 of mine, and the other client's 1"
    # The evicted search's cursor gets a clean OperationOutcome telling it to search again.
    issue = _outcome(_get(live_server.url, credentials, _next(firsts[0])), 400)
    assert "repeat the search" in issue["diagnostics"]
    assert _get(live_server.url, credentials, _next(firsts[-1])).status_code == 200
    assert _get(live_server.url, other_credentials, _next(theirs)).status_code == 200
