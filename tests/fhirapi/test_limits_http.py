"""Per-client limits through a real gunicorn with several workers sharing one Redis: a flood
from one client is refused while another is served, in-flight caps hold across workers and are
given back, and a statement PostgreSQL cancels for time answers a clean OperationOutcome."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection, transaction

from tests.servers import gunicorn, process_env, wait_until_serving

from .test_limits import REDIS_URL, redis_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

JSON = "application/fhir+json"
WORKERS = 4


@pytest.fixture
def serve(tmp_path, token_issuer):
    """Starts gunicorn (WORKERS workers) with these settings; yields its base URL."""
    redis_store()  # skips (fails in CI) when Redis is not answering

    def start(**overrides: str):
        env = process_env(
            ENVIRONMENT="test",
            SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
            SECURITY_TRUSTED_PROXIES="127.0.0.1/32",
            RATE_LIMIT_REDIS_URL=REDIS_URL,
            RATE_LIMIT_KEY_PREFIX=f"fhir-directory-test:{uuid.uuid4().hex}:",
            **overrides,
        )
        server = gunicorn(env, tmp_path, workers=WORKERS)
        url, process = server.__enter__()
        started.append(server)
        wait_until_serving(url, process)
        return url

    started = []
    yield start
    for server in started:
        server.__exit__(None, None, None)


def _get(url: str, credentials, path: str = "/fhir/Organization") -> requests.Response:
    return requests.get(f"{url}{path}", headers={**credentials.http, "Accept": JSON}, timeout=30)


def _outcome(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code
    assert int(response.headers["Retry-After"]) >= 1


def test_flood_is_refused_across_workers_while_another_client_is_served(
    serve, credentials, other_credentials
):
    url = serve(RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="3", RATE_LIMIT_CONCURRENT="0")
    with ThreadPoolExecutor(8) as pool:
        flood = list(pool.map(lambda _: _get(url, credentials), range(16)))
    served = [r for r in flood if r.status_code == 200]
    refused = [r for r in flood if r.status_code != 200]
    # Counted once for all workers: per-worker counting would let several bursts through.
    assert len(served) == 3, [r.status_code for r in flood]
    for response in refused:
        _outcome(response, 429, "throttled")
    assert int(refused[0].headers["Retry-After"]) <= 60
    assert [_get(url, other_credentials).status_code for _ in range(3)] == [200, 200, 200]


def _blocked_backends(count: int, seconds: float = 10) -> None:
    """Wait until `count` other backends are waiting on a lock."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            # Activity is read once per transaction unless its snapshot is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.1)
    raise AssertionError(f"{count} requests never blocked")


def test_in_flight_cap_and_statement_timeout(serve, credentials, other_credentials):
    url = serve(
        RATE_LIMIT_PER_MINUTE="0", RATE_LIMIT_CONCURRENT="2", FHIR_STATEMENT_TIMEOUT_MS="3000"
    )
    assert _get(url, credentials).status_code == 200  # security caches warm, nothing locked
    # Every search now waits on the table lock, holding its worker, until PostgreSQL cancels
    # the statement at the timeout.
    with ThreadPoolExecutor(2) as pool, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE directory_resource IN ACCESS EXCLUSIVE MODE")
        slow = [pool.submit(_get, url, credentials) for _ in range(2)]
        _blocked_backends(2)
        _outcome(_get(url, credentials), 429, "throttled")
        assert _get(url, other_credentials, "/fhir/metadata").status_code == 200
        for future in slow:
            _outcome(future.result(), 503, "timeout")
    # Both slots came back although the requests ended in errors.
    assert [_get(url, credentials).status_code for _ in range(3)] == [200, 200, 200]
