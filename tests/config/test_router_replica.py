"""The replica router against a real PostgreSQL streaming replica on loopback.

A throw-away primary cluster (initdb, trust on loopback, replication allowed) and a replica of it
made with pg_basebackup -R; both run as the postgres OS user and are removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from config.dbrouter import ReplicaRouter, request_scope
from config.replicas import ReplicaHealth
from directory.models import Resource
from tests.servers import free_port

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PRIMARY, REPLICA = "replica_test_primary", "replica_test_replica"
REPLICATION_SECONDS = 20


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL server bin directory with what the test runs."""
    needed = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
    for candidate in sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), reverse=True):
        if all((candidate / name).exists() for name in needed):
            return candidate
    return None


def unavailable_reason() -> str | None:
    if connection.vendor != "postgresql":
        return "the PostgreSQL run covers replicas; this run's default database is not PostgreSQL"
    if server_binaries() is None:
        return f"PostgreSQL server binaries not found under {PG_BIN_GLOB}"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "starting throw-away clusters needs root (runuser) or the postgres user"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user to run the clusters as"
    return None


def skip_or_fail_in_ci(reason: str) -> None:
    if os.environ.get("CI") and "not PostgreSQL" not in reason:
        pytest.fail(f"CI must run the replica test: {reason}")
    pytest.skip(reason)


@dataclass
class Clusters:
    bin: Path
    root: Path
    primary_port: int
    replica_port: int

    def run(self, *command: str) -> None:
        """Run a PostgreSQL tool as the postgres OS user; its output is shown on failure."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(  # noqa: S603 - fixed tools, test only
            [*prefix, str(self.bin / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"

    def pg_ctl(self, data: str, action: str, port: int | None = None) -> None:
        options = ["-o", f"-p {port} -k {self.root}"] if port else []
        self.run("pg_ctl", "-D", str(self.root / data), "-w", "-t", "30", *options,
                 "-l", str(self.root / f"{data}.log"), "-m", "fast", action)  # fmt: skip

    def start_primary(self) -> None:
        self.run("initdb", "-D", str(self.root / "primary"), "-U", "postgres",
                 "--auth=trust", "--no-sync", "-E", "UTF8")  # fmt: skip
        with (self.root / "primary" / "postgresql.conf").open("a") as conf:
            # Throw-away data: durability costs time and buys nothing here.
            conf.write("listen_addresses = '127.0.0.1'\nfsync = off\nshared_buffers = 16MB\n")
        self.pg_ctl("primary", "start", self.primary_port)

    def start_replica(self) -> None:
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port),
                 "-U", "postgres", "-D", str(self.root / "replica"), "-R", "-X", "stream",
                 "--checkpoint=fast", "--no-sync")  # fmt: skip
        self.pg_ctl("replica", "start", self.replica_port)

    def stop_all(self) -> None:
        for data in ("replica", "primary"):
            if (self.root / data / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.root / data), "-m", "immediate", "stop")


def database_settings(port: int) -> dict:
    """A complete Django database entry for one of the throw-away clusters."""
    return {
        **connection.settings_dict,
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "OPTIONS": {"connect_timeout": 2},
        "CONN_MAX_AGE": 0,
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
    }


@pytest.fixture(scope="module")
def clusters():
    reason = unavailable_reason()
    if reason:
        skip_or_fail_in_ci(reason)
    # Not pytest's tmp_path: the postgres user must be able to reach and own the directory.
    root = Path(tempfile.mkdtemp(prefix="fhir-replica-"))
    shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    found = Clusters(server_binaries(), root, free_port(), free_port())
    try:
        found.start_primary()
        found.start_replica()
        yield found
    finally:
        found.stop_all()
        shutil.rmtree(root, ignore_errors=True)


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
