"""Throw-away PostgreSQL clusters on loopback for the replica and outage tests.

A primary (initdb, trust on loopback, replication allowed), optionally holding a copy of the test
database and followed by a streaming replica made with pg_basebackup -R; both run as the postgres
OS user and are removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from tests import logcapture
from tests.servers import free_port

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


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


@contextmanager
def throwaway(prefix: str, *, copy: bool = False, replica: bool = False) -> Iterator[Clusters]:
    """A primary (with the test database copied in if asked) and, if asked, its replica."""
    reason = unavailable_reason()
    if reason:
        skip_or_fail_in_ci(reason)
    # Not pytest's tmp_path: the postgres user must be able to reach and own the directory.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    clusters = Clusters(server_binaries(), root, free_port(), free_port())
    try:
        clusters.start_primary()
        if copy:
            copy_test_database(clusters)
        if replica:
            clusters.start_replica()
        yield clusters
    finally:
        clusters.stop_all()
        # The server logs go with the directory: the secrets sweep reads them first.
        logcapture.keep("PostgreSQL logs", logcapture.log_files(root))
        shutil.rmtree(root, ignore_errors=True)


def copy_test_database(clusters: Clusters) -> None:
    source = connection.settings_dict
    dump = clusters.root / "test-database.sql"
    clusters.run("pg_dump", "-h", source["HOST"], "-p", str(source["PORT"] or 5432),
                 "-U", source["USER"], "--no-owner", "-f", str(dump), source["NAME"])  # fmt: skip
    clusters.run("psql", "-h", "127.0.0.1", "-p", str(clusters.primary_port), "-U", "postgres",
                 "-v", "ON_ERROR_STOP=1", "-q", "-f", str(dump), "postgres")  # fmt: skip
