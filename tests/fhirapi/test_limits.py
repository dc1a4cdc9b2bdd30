"""Per-client limits in one process: the refusal's shape, the algorithms of both stores, slots
given back on every path, a store that is down, and bulk commands outliving the statement timeout.

Across real gunicorn workers: tests/fhirapi/test_limits_http.py.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from rest_framework.test import APIClient

from fhirapi import limitstore
from fhirapi.limitstore import LocalLimitStore, RedisLimitStore

from .conftest import FHIR_JSON, outcome_issue

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_store() -> RedisLimitStore:
    """A Redis store under a prefix of its own; skipped locally (failed in CI) without Redis."""
    store = RedisLimitStore(REDIS_URL, f"fhir-directory-test:{uuid.uuid4().hex}:")
    try:
        store.client.ping()
    except Exception:
        if os.environ.get("CI"):
            pytest.fail("Redis is not answering on 127.0.0.1:6379; .ci/run starts it")
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    return store


@pytest.fixture(params=["local", "redis"])
def store(request):
    return LocalLimitStore() if request.param == "local" else redis_store()


def _as(credentials) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_ACCEPT=FHIR_JSON, **credentials.meta)
    return client


def test_rate_allows_the_burst_then_spaces_requests(store):
    key = uuid.uuid4().hex
    assert [store.take(key, 200, 3) for _ in range(3)] == [0, 0, 0]
    wait = store.take(key, 200, 3)
    assert 0 < wait <= 200
    assert store.take("someone-else", 200, 3) == 0
    time.sleep(wait / 1000 + 0.05)
    assert store.take(key, 200, 3) == 0
    assert store.take(key, 200, 3) > 0


def test_a_cost_counts_as_that_many_requests(store):
    key = uuid.uuid4().hex
    assert store.take(key, 200, 5, cost=3) == 0
    assert store.take(key, 200, 5, cost=3) > 0  # two of five left
    assert store.take(key, 200, 5, cost=2) == 0


def test_a_cost_above_the_burst_passes_only_whole_then_waits_it_out(store):
    key = uuid.uuid4().hex
    assert store.take(key, 100, 3) == 0
    assert store.take(key, 100, 3, cost=10) > 0  # the allowance is no longer whole
    fresh = uuid.uuid4().hex
    assert store.take(fresh, 100, 3, cost=10) == 0
    # As if ten requests had come one by one: the next waits about eight intervals.
    assert 700 < store.take(fresh, 100, 3) <= 800
    # A Bundle's entries, its POST counted already: whole but for that one is whole enough.
    bundle = uuid.uuid4().hex
    assert store.take(bundle, 100, 3) == 0
    assert store.take(bundle, 100, 3, cost=10, counted=1) == 0


def test_in_flight_slots_are_capped_released_and_expire(store):
    key = uuid.uuid4().hex
    first = store.acquire(key, 2, 300)
    second = store.acquire(key, 2, 300)
    assert first and second and store.acquire(key, 2, 300) is None
    store.release(key, first)
    assert store.acquire(key, 2, 300) is not None
    # A worker killed mid-request never releases: its slots lapse on their own.
    time.sleep(0.35)
    assert store.acquire(key, 2, 300) is not None


def test_flood_is_refused_with_retry_after_while_another_client_is_served(
    api, other_credentials, settings
):
    settings.RATE_LIMIT_PER_MINUTE, settings.RATE_LIMIT_BURST = 1, 3
    statuses = [api.get("/fhir/Organization").status_code for _ in range(3)]
    refused = api.get("/fhir/Organization")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert outcome_issue(refused)["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Cache-Control"] == "no-store"
    assert _as(other_credentials).get("/fhir/Organization").status_code == 200


def test_slot_is_given_back_after_errors(api, settings, monkeypatch):
    settings.RATE_LIMIT_CONCURRENT = 1

    def broken(request):
        raise RuntimeError("search failed")

    monkeypatch.setattr("fhirapi.handlers.search", broken)
    for _ in range(3):
        assert api.get("/fhir/Organization").status_code == 500
        assert api.get("/fhir/Nope").status_code == 404
    monkeypatch.undo()
    assert api.get("/fhir/Organization").status_code == 200


def test_limits_fail_closed_when_the_store_is_down(api, settings):
    settings.RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:9/0"  # discard port: nothing listens
    response = api.get("/fhir/Organization")
    assert response.status_code == 503
    assert outcome_issue(response)["code"] == "transient"
    assert response["Retry-After"] == "5"
    limitstore.reset()


@pytest.mark.django_db(transaction=True)
def test_bulk_load_lifts_the_statement_timeout(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.get("options")
    options["options"] = "-c statement_timeout=4321"
    connection.close()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "4321ms"
        bundle = tmp_path / "empty.json"
        bundle.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
        call_command("loaddirectory", str(bundle), stdout=open(os.devnull, "w"))  # noqa: SIM115
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "0"
        assert "statement_timeout" not in options["options"], "later connections too"
    finally:
        options["options"] = saved or ""
        connection.close()


def test_statement_cancelled_outside_the_view_is_a_clean_503(api, monkeypatch):
    """A security check's query cancelled for time: the same 503 as in the view, not a 500."""
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")

    def slow_check(self, request, context):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 50")
            cursor.execute("SELECT pg_sleep(1)")

    monkeypatch.setattr("security.middleware.spine.SpineHeadersMiddleware.check", slow_check)
    monkeypatch.setattr(
        "security.middleware.spine.SpineHeadersMiddleware.applies", lambda self, request: True
    )
    api.raise_request_exception = False
    response = api.get("/fhir/Organization")
    assert response.status_code == 503
    assert outcome_issue(response)["code"] == "timeout"
    assert response["Retry-After"] == "10"
    assert response["Cache-Control"] == "no-store"
