"""A read replica killed, and shut down, under a read load through the production stack.

The service (nginx with mutual TLS, production gunicorn) runs on a throw-away primary holding a
copy of the test database and a streaming replica of it (pg_basebackup), configured with
DATABASE_REPLICA_URLS. Which of the two serves the reads is read from each server's own table
statistics (scans of the directory's tables), sampled every SAMPLE_EVERY seconds; the clients
record every answer. Under the load, once the replica serves the reads, its postmaster is
SIGKILLed, later shut down fast, and each time restarted. Asserted, as README "Read replicas"
states: requests sent more than FALLBACK_SECONDS after the fault are all answered from the
primary (200); the only other answer, to reads caught on the replica as it died, is 503
`transient` with Retry-After; within RETURN_SECONDS of the replica accepting connections again
it serves reads again. The measured times go to var/loadtest.json and the terminal summary.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import pytest

from config.replicas import CHECK_TTL_SECONDS
from tests.e2e.nginx_support import write_tls_files
from tests.pgclusters import Clusters, throwaway

from .conftest import REPORTED, WORKERS
from .processes import alive, children_of
from .stack import (
    Workload,
    assert_no_secret_anywhere,
    deployment,
    production_limits,
    register_load_clients,
    run_load,
    seed,
    well_formed_refusal,
    write_result,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONNECTIONS = [4, 4, 4]  # three clients within their in-flight cap
MIX = {"read": 60, "search": 40}
WARM_UP, OUTAGE, AFTER = 5.0, 4.0, 8.0  # seconds
SERVING_TIMEOUT = 30.0
SAMPLE_EVERY = 0.25
# Seconds before each fault in which the replica must serve most reads (two thirds of the scans
# at least; each worker's refresh of custom parameters, among others, reads the primary): after a
# return, once every worker has asked again (CHECK_TTL_SECONDS, plus a second for the
# statistics), before AFTER ends.
SERVING_WINDOW = 3.0
# A dead replica's connections are seen hung up before the next query and a new one is refused
# at once; only a read already running on it fails. The bound allows for a loaded machine.
FALLBACK_SECONDS = 2.0
# A replica found down is asked again after CHECK_TTL_SECONDS; the servers' statistics show a
# scan up to a second late (PostgreSQL flushes them at most once a second).
RETURN_SECONDS = CHECK_TTL_SECONDS + 3.0
# Scans of the directory's own tables; search snapshots always live on the primary.
SCANS = (
    "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) "
    "FROM pg_stat_user_tables WHERE relname LIKE 'directory\\_%' AND relname NOT LIKE '%snapshot%'"
)


@dataclass
class ScanSampler:
    """Directory-table scan counters of the primary and the replica, sampled in a thread."""

    ports: dict[str, int]
    samples: list[tuple[float, str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ScanSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        connections: dict[str, psycopg.Connection | None] = dict.fromkeys(self.ports)
        while not self._stop.is_set():
            for name, port in self.ports.items():
                connections[name] = self._sample(name, port, connections[name])
            self._stop.wait(SAMPLE_EVERY)
        for connection in connections.values():
            if connection is not None:
                connection.close()

    def _sample(self, name: str, port: int, connection):
        try:
            if connection is None or connection.closed:
                connection = psycopg.connect(
                    host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                    connect_timeout=1, autocommit=True,
                )  # fmt: skip
            count = connection.execute(SCANS).fetchone()[0]
        except psycopg.Error:
            return None  # down: no sample
        self.samples.append((time.monotonic(), name, int(count)))
        return connection

    def scans(self, name: str, start: float, end: float) -> int:
        """Scans `name` made in [start, end], counting on from zero after a restart reset them."""
        values = [count for t, n, count in self.samples if n == name and start <= t <= end]
        total = 0
        for before, after in itertools.pairwise(values):
            total += after - before if after >= before else after
        return total

    def first_scan_after(self, name: str, since: float) -> float | None:
        """When `name`'s counter was first seen to rise after `since`."""
        values = [(t, count) for t, n, count in self.samples if n == name and t >= since]
        for (_, before), (t, after) in itertools.pairwise(values):
            if after != before:
                return t
        return None


@dataclass(frozen=True)
class Fault:
    kind: str
    down: float
    back: float


def kill_replica(clusters: Clusters) -> None:
    """SIGKILL to the replica's postmaster, as a crash would; its backends notice and exit."""
    postmaster = int((clusters.root / "replica" / "postmaster.pid").read_text().split()[0])
    backends = children_of(postmaster)
    os.kill(postmaster, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in [postmaster, *backends]) and time.monotonic() < deadline:
        time.sleep(0.05)
    (clusters.root / "replica" / "postmaster.pid").unlink(missing_ok=True)


def stop_replica(clusters: Clusters) -> None:
    clusters.pg_ctl("replica", "stop")  # fast shutdown: sessions are told and closed


def serving_share(scans: ScanSampler, end: float) -> tuple[int, int]:
    """(replica, primary) scans in the SERVING_WINDOW before `end`."""
    start = end - SERVING_WINDOW
    return scans.scans("replica", start, end), scans.scans("primary", start, end)


def replica_serving(scans: ScanSampler) -> bool:
    replica, primary = serving_share(scans, time.monotonic())
    return replica > 0 and replica >= 2 * primary


def wait_until_replica_serves(scans: ScanSampler) -> None:
    """On a loaded machine the first connections to the replica can take longer than its
    connect timeout, and a worker then reads the primary for CHECK_TTL_SECONDS: wait it out."""
    deadline = time.monotonic() + SERVING_TIMEOUT
    while not replica_serving(scans):
        if time.monotonic() > deadline:
            pytest.fail(f"the replica served no reads for {SERVING_TIMEOUT} s")
        time.sleep(0.5)


def faults(clusters: Clusters, scans: ScanSampler) -> list[Fault]:
    """Each fault in turn, once the replica serves the reads: take it down, wait OUTAGE, start
    it, wait AFTER."""
    done = []
    time.sleep(WARM_UP)
    for kind, take_down in (("SIGKILL", kill_replica), ("fast shutdown", stop_replica)):
        wait_until_replica_serves(scans)
        down = time.monotonic()
        take_down(clusters)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down)))
        clusters.pg_ctl("replica", "start", clusters.replica_port)
        back = time.monotonic()  # pg_ctl -w returned: the replica accepts connections
        done.append(Fault(kind, down, back))
        time.sleep(AFTER)
    return done


def is_throttled(record: dict) -> bool:
    return well_formed_refusal(record, "throttled")


def judge(fault: Fault, records: list[dict], scans: ScanSampler) -> dict:
    """The figures of one fault; asserts the bounds in the module docstring."""
    before = serving_share(scans, fault.down)
    assert before[0] > 0 and before[0] >= 2 * before[1], f"reads not on the replica: {before}"
    # A well-formed 429 is the client's own rate limit (production's, checked above), not the
    # fault: on a fast machine 12 connections outrun 600 requests a minute.
    during = [
        r
        for r in records
        if fault.down <= r["sent"] < fault.back and not (r["status"] == 429 and is_throttled(r))
    ]
    failed = [r for r in during if r["status"] != 200]
    for record in failed:
        assert record["status"] == 503 and well_formed_refusal(record, "transient"), record
        assert record["sent"] < fault.down + FALLBACK_SECONDS, f"still failing: {record}"
    settled = [r for r in during if r["sent"] >= fault.down + FALLBACK_SECONDS]
    assert settled and all(r["status"] == 200 for r in settled)
    assert scans.scans("primary", fault.down + FALLBACK_SECONDS, fault.back) > 0
    returned = scans.first_scan_after("replica", fault.back)
    assert returned is not None, "reads never returned to the replica"
    took = returned - fault.back
    assert took < RETURN_SECONDS, f"back on the replica after {took:.1f} s"
    last_failure = max((r["sent"] + r["ms"] / 1000 for r in failed), default=fault.down)
    return {
        "fault": fault.kind,
        "scans_before_replica_primary": list(before),
        "requests_during_outage": len(during),
        "answered_503": len(failed),
        # From the fault to the last failed answer: 0 when no request failed.
        "failing_for_seconds": round(last_failure - fault.down, 2),
        # From the fault to the primary's statistics showing the reads (up to 1 s late).
        "primary_serving_after_seconds": round(
            (scans.first_scan_after("primary", fault.down) or fault.down) - fault.down, 2
        ),
        "back_on_replica_seconds": round(returned - fault.back, 2),
    }


def test_reads_fall_back_to_the_primary_and_return_to_the_replica(
    production, credentials, pki, token_issuer, redis_server, tmp_path
):
    ids, names, identifiers = seed()
    tls = write_tls_files(pki, tmp_path)
    out = tmp_path / "load"
    out.mkdir()
    # A bound: the load stops once the faults are done.
    seconds = 4 * (WARM_UP + 2 * (OUTAGE + AFTER)) + 2 * SERVING_TIMEOUT
    load = register_load_clients(pki, token_issuer, out, CONNECTIONS, lifetime=int(seconds) + 600)
    work = Workload(seconds, MIX, ids, names, identifiers, stop_file=tmp_path / "stop")

    with throwaway("fhir-replica-load-", copy=True, replica=True) as clusters:
        env = production_limits(production, redis_server.url) | {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{clusters.primary_port}/postgres",
            "DATABASE_REPLICA_URLS": f"postgres://postgres@127.0.0.1:{clusters.replica_port}/postgres",
        }
        ports = {"primary": clusters.primary_port, "replica": clusters.replica_port}
        with deployment(env, tls, tmp_path, WORKERS) as (edge, _), ScanSampler(ports) as scans:
            started = time.monotonic()
            collect = run_load(edge, tls, load, work, out)
            done = faults(clusters, scans)
            work.stop_file.touch()
            records = collect()
        cluster_logs = "\n".join(p.read_text(errors="replace") for p in clusters.root.glob("*.log"))

    statuses = Counter(r["status"] for r in records)
    assert set(statuses) <= {200, 429, 503}, statuses
    for refused in (r for r in records if r["status"] == 429):
        assert well_formed_refusal(refused, "throttled"), refused
    assert_no_secret_anywhere(tmp_path, cluster_logs)
    figures = [judge(fault, records, scans) for fault in done]
    result = {"requests": len(records), "statuses": {str(s): n for s, n in statuses.items()}}
    result["seconds"] = round(time.monotonic() - started, 1)
    result["faults"] = figures
    REPORTED.append(("replica faults", "\n".join(str(figure) for figure in figures)))
    write_result("replica_faults", result)
