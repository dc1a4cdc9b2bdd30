"""PostgreSQL restarted, or its postmaster killed, under a write load against gunicorn workers.

The server runs on a throw-away cluster of its own (initdb + pg_ctl on a free loopback port,
holding a copy of the test database), so the fault never touches the shared server. Acknowledged
writes must all survive; during the outage clients get 503 OperationOutcomes with Retry-After
(no 500, no 401/403 from a check that could not be made, no hang); within 2 s of the database
returning every request succeeds again.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections

from directory.models import ResourceVersion
from tests.pgclusters import Clusters, database_settings, throwaway
from tests.servers import gunicorn, wait_until_serving

from .conftest import REPORTED, WORKERS, assert_no_secret_in_logs
from .fhir import FhirClient
from .load import Attempt, WriteLoad, check_outage
from .processes import alive, children_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ALIAS = "outage_cluster"
CLIENTS = 4
WARM_UP, OUTAGE, AFTER = 1.5, 2.5, 3.0  # seconds


@pytest.fixture
def cluster(credentials):
    """A throw-away PostgreSQL holding a copy of the test database (schema, client, key, trust)."""
    with throwaway("fhir-outage-", copy=True) as found:
        yield found


@pytest.fixture
def stored(cluster, django_db_blocker):
    """The resource versions in the throw-away cluster, read through a Django alias."""

    def versions() -> dict[str, str]:
        with django_db_blocker.unblock():
            rows = ResourceVersion.objects.using(ALIAS).filter(version_id=1)
            return dict(rows.values_list("logical_id", "content"))

    connections.settings[ALIAS] = database_settings(cluster.primary_port)
    try:
        yield versions
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]
        del connections.settings[ALIAS]


@contextmanager
def serving(cluster: Clusters, env: dict[str, str], credentials, logs: Path, cache_seconds: str):
    """gunicorn on the throw-away cluster, caching trust and keys for `cache_seconds`."""
    env = env | {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{cluster.primary_port}/postgres",
        "SECURITY_CACHE_SECONDS": cache_seconds,
    }
    with gunicorn(env, logs, workers=WORKERS) as (base, process):
        wait_until_serving(base, process)
        yield FhirClient(f"{base}/fhir", credentials.http, timeout=10)
        assert process.poll() is None, "gunicorn died during the outage"
    assert_no_secret_in_logs(logs)


def restart(cluster: Clusters) -> None:
    cluster.pg_ctl("primary", "stop")
    time.sleep(OUTAGE)


def kill_postmaster(cluster: Clusters) -> None:
    """SIGKILL to the postmaster alone, as a crash would; its backends notice and exit."""
    pid_file = cluster.root / "primary" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0])
    backends = children_of(postmaster)
    os.kill(postmaster, signal.SIGKILL)
    time.sleep(OUTAGE)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in [postmaster, *backends]) and time.monotonic() < deadline:
        time.sleep(0.1)


def run_outage(cluster: Clusters, fhir: FhirClient, interrupt) -> tuple[list[Attempt], float]:
    """The load's attempts, and when the database accepted connections again."""
    with WriteLoad(fhir, threads=CLIENTS) as load:
        time.sleep(WARM_UP)
        interrupt(cluster)
        cluster.pg_ctl("primary", "start", cluster.primary_port)
        back = time.monotonic()
        time.sleep(AFTER)
    return load.snapshot(), back


def test_database_restart_under_write_load(cluster, stored, server_env, credentials, tmp_path):
    # Trust and keys cached as in production: the client and key lookups meet the outage.
    with serving(cluster, server_env, credentials, tmp_path, cache_seconds="5") as fhir:
        attempts, back = run_outage(cluster, fhir, restart)
    REPORTED.append(("database restart", check_outage(attempts, back, stored())))


def test_postmaster_killed_under_write_load(cluster, stored, server_env, credentials, tmp_path):
    # Nothing cached: loading the trust store itself meets the outage.
    with serving(cluster, server_env, credentials, tmp_path, cache_seconds="0") as fhir:
        attempts, back = run_outage(cluster, fhir, kill_postmaster)
    REPORTED.append(("postmaster SIGKILL", check_outage(attempts, back, stored())))
