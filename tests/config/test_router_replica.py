"""The replica router against a real PostgreSQL streaming replica on loopback.

A throw-away primary cluster (initdb, trust on loopback, replication allowed) and a replica of it
made with pg_basebackup -R; both run as the postgres OS user and are removed afterwards.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from config.dbrouter import ReplicaRouter, request_scope
from config.replicas import ReplicaHealth
from directory.models import Resource
from tests.pgclusters import database_settings, throwaway

PRIMARY, REPLICA = "replica_test_primary", "replica_test_replica"
REPLICATION_SECONDS = 20


@pytest.fixture(scope="module")
def clusters():
    with throwaway("fhir-replica-", replica=True) as found:
        yield found


@pytest.fixture(scope="module")
def aliases(clusters, django_db_blocker):
    """Django aliases for the throw-away primary and replica, with the Resource table."""
    with django_db_blocker.unblock():
        connections.settings[PRIMARY] = database_settings(clusters.primary_port)
        connections.settings[REPLICA] = database_settings(clusters.replica_port)
        try:
            with connections[PRIMARY].schema_editor() as editor:
                editor.create_model(Resource)
            wait_for_table_on_replica(Resource._meta.db_table)
            yield
        finally:
            for alias in (REPLICA, PRIMARY):
                connections[alias].close()
                del connections[alias]
                del connections.settings[alias]


def wait_for_table_on_replica(table: str) -> None:
    """Queries before the replica has replayed CREATE TABLE would fail, not just find nothing."""
    deadline = time.monotonic() + REPLICATION_SECONDS
    with connections[REPLICA].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    pytest.fail(f"the replica did not replay CREATE TABLE {table}")


@pytest.fixture
def router(aliases, django_db_blocker):
    """A fresh replica router for the throw-away clusters, installed as Django's router."""
    replica_router = ReplicaRouter(primary=PRIMARY, replicas=[REPLICA], health=ReplicaHealth())
    with django_db_blocker.unblock(), override_settings(DATABASE_ROUTERS=[replica_router]):
        yield replica_router


def write_resource() -> str:
    logical_id = str(uuid.uuid4())
    Resource.objects.create(
        resource_type="Organization",
        logical_id=logical_id,
        version_id=1,
        last_updated=timezone.now(),
        content='{"resourceType":"Organization"}',
    )
    return logical_id


def lookup(logical_id: str):
    return Resource.objects.filter(resource_type="Organization", logical_id=logical_id)


def replicated(logical_id: str) -> bool:
    """Polls in fresh requests until the replica has the row."""
    deadline = time.monotonic() + REPLICATION_SECONDS
    while time.monotonic() < deadline:
        with request_scope():
            rows = lookup(logical_id)
            assert rows.db == REPLICA
            if rows.exists():
                return True
        time.sleep(0.05)
    return False


def test_reads_go_to_the_replica_once_replicated(router):
    with request_scope():
        logical_id = write_resource()
    assert replicated(logical_id)


def test_a_read_after_a_write_in_the_same_request_reads_the_primary(router):
    with request_scope():
        logical_id = write_resource()
        rows = lookup(logical_id)
        assert rows.db == PRIMARY
        assert rows.exists()  # at once, however far the replica lags


def test_a_read_in_a_transaction_reads_the_primary(router):
    with request_scope(), transaction.atomic(using=PRIMARY):
        assert lookup("anything").db == PRIMARY


def test_a_stopped_replica_falls_back_to_the_primary(router, clusters):
    with request_scope():
        logical_id = write_resource()
    assert replicated(logical_id)  # this thread now holds an open connection to the replica

    clusters.pg_ctl("replica", "stop")
    try:
        with request_scope():
            rows = lookup(logical_id)
            assert rows.db == PRIMARY  # noticed on the hung-up connection, no waiting
            assert rows.exists()
        # A process that had no connection open finds out by trying to connect.
        router.health.forget(REPLICA)
        with request_scope():
            assert lookup(logical_id).db == PRIMARY
            assert lookup(logical_id).exists()
    finally:
        clusters.pg_ctl("replica", "start", clusters.replica_port)

    router.health.forget(REPLICA)  # back within CHECK_TTL_SECONDS anyway; no need to wait here
    with request_scope():
        assert lookup(logical_id).db == REPLICA
