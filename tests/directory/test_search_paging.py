"""Paging: keyset and snapshot pages stay free of skips and repeats while others write."""

import json
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core import signing
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from directory import storage
from directory.errors import InvalidRequest
from directory.models import SearchSnapshot, SearchSnapshotChunk, SearchSnapshotEntry
from directory.search import CURSOR_SALT, SearchRequest, search
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def fetch(params, rtype="Organization"):
    return search(SearchRequest(rtype, list(params)))


def ids(result) -> list[str]:
    return [e.content["id"] for e in result.entries]


def walk_forward(params, between=lambda page_no: None, limit=100):
    """Follow next links to the end, calling `between` after each page; returns the pages."""
    pages, result = [], fetch(params)
    while True:
        pages.append(ids(result))
        if result.next_params is None or len(pages) >= limit:
            return pages, result
        between(len(pages))
        result = fetch(result.next_params)


def flat(pages):
    return [i for page in pages for i in page]


def create_named(n, name="Match", prefix="org"):
    return [OrganizationFactory.create(id=f"{prefix}-{i:03d}", name=name)["id"] for i in range(n)]


def rename(logical_id, name):
    current = storage.read("Organization", logical_id)
    content = json.loads(current.content)
    storage.update("Organization", logical_id, {**content, "name": name})


# ---------------------------------------------------------------- keyset paging


def churn(existing, served_so_far):
    """Writes between page fetches: new matches, touched matches, deletions, non-matches."""
    state = {"made": 0, "deleted": set()}

    def between(page_no):
        state["made"] += 1
        OrganizationFactory.create(id=f"new-{page_no:03d}", name="Match new")
        OrganizationFactory.create(name="Unrelated")
        rename(existing[page_no], f"Match touched {page_no}")  # an early, already served one
        victim = existing[-page_no]
        storage.delete("Organization", victim)
        state["deleted"].add(victim)
        rename(existing[-page_no - 5], f"Match late {page_no}")  # one not yet served

    return between, state


@pytest.mark.parametrize("sort", [None, "_id", "-_id"])
def test_keyset_paging_under_writes_has_no_skips_or_repeats(sort):
    existing = create_named(30)
    between, state = churn(existing, [])
    params = [("name", "match"), ("_count", "4")] + ([("_sort", sort)] if sort else [])
    pages, _ = walk_forward(params, between)
    served = flat(pages)
    assert len(served) == len(set(served)), "a resource was served twice"
    survivors = set(existing) - state["deleted"]
    assert survivors <= set(served), f"skipped: {survivors - set(served)}"
    assert not state["deleted"] & set(served[-4:])  # deleted ones never show up on later pages
    if sort:
        expected_order = sorted(served, reverse=sort.startswith("-"))
        assert served == expected_order


def test_keyset_pages_are_in_insertion_order_and_total_is_live():
    existing = create_named(9)
    first = fetch([("_count", "4"), ("_total", "accurate")])
    assert ids(first) == existing[:4] and first.total == 9
    OrganizationFactory.create()
    second = fetch(first.next_params)
    assert ids(second) == existing[4:8] and second.total == 10


def test_previous_links_walk_back_over_the_same_pages():
    existing = create_named(11)
    pages, last = walk_forward([("_count", "3")])
    assert pages == [existing[0:3], existing[3:6], existing[6:9], existing[9:11]]
    back, result = [], last
    while result.previous_params is not None:
        result = fetch(result.previous_params)
        back.append(ids(result))
    assert back == [existing[6:9], existing[3:6], existing[0:3]]
    assert fetch(result.next_params) and ids(fetch(result.next_params)) == existing[3:6]


def test_previous_on_sorted_by_id_descending():
    existing = create_named(7)
    pages, last = walk_forward([("_sort", "-_id"), ("_count", "3")])
    assert flat(pages) == sorted(existing, reverse=True)
    assert ids(fetch(last.previous_params)) == pages[-2]


def test_empty_page_after_deletions_still_links_back():
    existing = create_named(6)
    first = fetch([("_count", "3")])
    for logical_id in existing[3:]:
        storage.delete("Organization", logical_id)
    second = fetch(first.next_params)
    assert ids(second) == [] and second.next_params is None
    assert ids(fetch(second.previous_params)) == existing[:3]


# ---------------------------------------------------------------- snapshot paging


def stored_positions(snapshot=None) -> int:
    """Positions stored for one snapshot (or all), whichever layout the database uses."""
    scope = {"snapshot": snapshot} if snapshot else {}
    entries = SearchSnapshotEntry.objects.filter(**scope).count()
    chunks = SearchSnapshotChunk.objects.filter(**scope).values_list("resource_pks", flat=True)
    return entries + sum(len(pks) for pks in chunks)


def test_sorted_paging_serves_the_first_page_snapshot():
    existing = create_named(20, name="Match")
    for i, logical_id in enumerate(existing):
        rename(logical_id, f"Match {i:02d}")
    deleted = set()

    def between(page_no):
        rename(existing[5 + page_no], "Match 00 moved to the front")
        rename(existing[page_no], "Match 99 moved to the back")
        OrganizationFactory.create(name="Match 50 new")
        storage.delete("Organization", existing[15 + page_no])  # on the last, unserved page
        deleted.add(existing[15 + page_no])

    pages, last = walk_forward([("name", "match"), ("_sort", "name"), ("_count", "4")], between)
    served = flat(pages)
    assert len(served) == len(set(served))
    assert set(served) == set(existing) - deleted
    assert last.total == 20  # the snapshot's total, not the live count
    assert served == [i for i in existing if i not in deleted]  # the first page's order


def test_snapshot_is_one_insert_select_and_first_page_matches_it():
    create_named(12)
    with CaptureQueriesContext(connection) as small:
        fetch([("_sort", "-_lastUpdated"), ("_count", "2")])
    create_named(40, prefix="more")
    with CaptureQueriesContext(connection) as large:
        result = fetch([("_sort", "-_lastUpdated"), ("_count", "2")])
    assert len(small) == len(large)
    inserts = [q["sql"] for q in large if "INSERT INTO" in q["sql"] and "snapshot" in q["sql"]]
    inserts = [sql for sql in inserts if "SELECT" in sql]
    assert len(inserts) == 1
    assert stored_positions(SearchSnapshot.objects.get(total=52)) == 52
    assert result.total == 52 and ids(result) == [f"more-{i:03d}" for i in (39, 38)]


def test_small_sorted_result_needs_no_snapshot():
    create_named(3)
    result = fetch([("_sort", "name"), ("_count", "5")])
    assert result.total == 3 and result.next_params is None
    assert not SearchSnapshot.objects.exists()


def test_snapshot_previous_links():
    existing = create_named(7)
    pages, last = walk_forward([("_sort", "_lastUpdated"), ("_count", "3")])
    assert pages == [existing[0:3], existing[3:6], existing[6:7]]
    middle = fetch(last.previous_params)
    assert ids(middle) == existing[3:6]
    assert ids(fetch(middle.previous_params)) == existing[0:3]
    assert fetch(middle.previous_params).previous_params is None


def test_expired_snapshot_is_400_and_purged_later():
    create_named(5)
    first = fetch([("_sort", "name"), ("_count", "2")])
    SearchSnapshot.objects.update(expires=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvalidRequest, match="expired"):
        fetch(first.next_params)
    fetch([("_sort", "-name"), ("_count", "2")])
    assert SearchSnapshot.objects.count() == 1
    assert stored_positions() == 5


def test_pages_cross_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(SearchSnapshotChunk, "SIZE", 3)
    existing = create_named(11)
    pages, last = walk_forward([("_sort", "_lastUpdated"), ("_count", "2")])
    assert flat(pages) == existing and last.total == 11
    assert ids(fetch(last.previous_params)) == existing[8:10]


def test_purgesearches_drops_every_expired_snapshot_only():
    create_named(5)
    for order in ("name", "-name", "_lastUpdated", "-_lastUpdated"):
        kept = fetch([("_sort", order), ("_count", "2")])
    newest = SearchSnapshot.objects.latest("created")
    SearchSnapshot.objects.exclude(pk=newest.pk).update(expires=timezone.now())
    out = StringIO()
    call_command("purgesearches", batch=2, stdout=out)
    assert "purged 3 " in out.getvalue()
    assert SearchSnapshot.objects.count() == 1 and stored_positions() == 5
    assert len(ids(fetch(kept.next_params))) == 2


# ---------------------------------------------------------------- cursor tokens


def test_tampered_cursor_is_400():
    create_named(5)
    first = fetch([("_count", "2")])
    token = dict(first.next_params)["_cursor"]
    with pytest.raises(InvalidRequest, match="_cursor"):
        fetch([("_count", "2"), ("_cursor", token[:-2] + "xx")])
    with pytest.raises(InvalidRequest, match="_cursor"):
        fetch([("_cursor", "garbage")])


def test_forged_state_without_signature_is_rejected():
    create_named(3)
    forged = signing.dumps({"b": False, "v": 0, "i": False, "t": "Organization"}, salt="other")
    with pytest.raises(InvalidRequest):
        fetch([("_cursor", forged)])
    unsalted_type = signing.dumps({"m": "x", "t": "Location"}, salt=CURSOR_SALT)
    with pytest.raises(InvalidRequest):
        fetch([("_cursor", unsalted_type)])


def test_cursor_is_bound_to_its_search():
    create_named(5)
    first = fetch([("name", "match"), ("_count", "2")])
    token = dict(first.next_params)["_cursor"]
    with pytest.raises(InvalidRequest, match="different search"):
        fetch([("name", "other"), ("_count", "2"), ("_cursor", token)])
    with pytest.raises(InvalidRequest):
        fetch([("name", "match"), ("_cursor", token)], rtype="Location")
    smaller = fetch([("name", "match"), ("_count", "1"), ("_cursor", token)])
    assert len(ids(smaller)) == 1  # page size may change between pages


# ---------------------------------------------------------------- real concurrency


def _writer(stop: threading.Event, initial: list[str], worker: int, errors: list):
    try:
        n = 0
        while not stop.is_set():
            n += 1
            made = OrganizationFactory.create(id=f"w{worker}-{n}", name="Stable new")
            rename(initial[(n * 7 + worker) % len(initial)], f"Stable {worker}-{n}")
            if n % 2:
                storage.delete("Organization", made["id"])
            time.sleep(0.002)
    except Exception as exc:  # surfaced by the test body
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sort", [None, "-_lastUpdated"])
def test_reader_pages_consistently_while_writers_run(sort):
    initial = create_named(60, name="Stable")
    stop, errors = threading.Event(), []
    writers = [threading.Thread(target=_writer, args=(stop, initial, w, errors)) for w in range(3)]
    for thread in writers:
        thread.start()
    try:
        params = [("name", "stable"), ("_count", "7")] + ([("_sort", sort)] if sort else [])
        pages, _ = walk_forward(params, between=lambda _: time.sleep(0.01))
    finally:
        stop.set()
        for thread in writers:
            thread.join()
    assert not errors
    served = flat(pages)
    assert len(served) == len(set(served)), "repeated entries"
    assert set(initial) <= set(served), "skipped entries"
