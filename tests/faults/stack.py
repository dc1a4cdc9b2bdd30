"""The deployment under load: nginx with deploy/nginx (mutual TLS) in front of a production-mode
gunicorn on its unix socket, several registered clients with certificate, API key and token, the
load generator (loadgen.py) in one process per client, and the workers' memory sampled from /proc.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from security import clients, keys
from security.models import TrustCommunity
from tests.credentials import ALL_SCOPES, TokenIssuer
from tests.e2e.nginx_support import Edge, TlsFiles, logs_text, nginx, write_client
from tests.factories import NPI_SYSTEM, OrganizationFactory
from tests.logcapture import leaked
from tests.security.pki import PKI, make_leaf
from tests.servers import ROOT, gunicorn, unix_socket, wait_until_serving

from .processes import children_of

EXPECTED = {"read": {200}, "search": {200}, "create": {201}, "update": {200}}
RSS_EVERY = 2.0  # seconds between samples of every worker's resident memory
SEEDED = 60  # Organizations to read and search


@dataclass(frozen=True)
class LoadClient:
    """A registered API client of the load and the files and secrets its process needs."""

    name: str
    cert: str
    key: str
    api_key: str
    token: str
    connections: int


def register_load_clients(
    pki: PKI, issuer: TokenIssuer, directory: Path, connections: list[int], lifetime: int
) -> list[LoadClient]:
    """One client of community A per entry of `connections`, each with its own certificate."""
    community = TrustCommunity.objects.get(slug="community-a")
    made = []
    for number, count in enumerate(connections):
        name = f"load-{number}"
        dns = f"{name}.client-a.example.org"
        leaf = make_leaf(pki.a.intermediate, f"Load client {number}", (dns,))
        client = clients.create_client(
            f"Load client {number}", community=community, allowed_scopes=ALL_SCOPES, actor="tests"
        )
        clients.add_identity(client, "dns", value=dns, actor="tests")
        api_key = keys.issue_key(client, actor="tests")[1]  # remembered by the secrets sweep
        cert, key = write_client(leaf, directory, name)
        token = issuer.mint(lifetime=lifetime)  # likewise
        made.append(LoadClient(name, cert, key, api_key, token, count))
    return made


def seed() -> tuple[list[str], list[str], list[str]]:
    """Organizations to read and search: (ids, names to search, identifiers system|value)."""
    stored = OrganizationFactory.create_batch(SEEDED)
    ids = [org["id"] for org in stored]
    names = sorted({org["name"].rsplit(" ", 1)[0] for org in stored} | {stored[0]["name"]})
    identifiers = [f"{NPI_SYSTEM}|{org['identifier'][0]['value']}" for org in stored]
    return ids, names, identifiers


def production_limits(env: dict[str, str], redis_url: str) -> dict[str, str]:
    """The production defaults of every request limit (settings.py), counted in one Redis."""
    env = {key: value for key, value in env.items() if not key.startswith("RATE_LIMIT_")}
    return env | {"RATE_LIMIT_REDIS_URL": redis_url}


@contextmanager
def deployment(env: dict[str, str], tls: TlsFiles, directory: Path, workers: int):
    """(edge, gunicorn master) of the production stack; every log lands under `directory`."""
    app_logs = directory / "gunicorn"
    app_logs.mkdir(parents=True, exist_ok=True)
    with (
        unix_socket() as sock,
        gunicorn(env, app_logs, f"unix:{sock}", workers=workers) as (url, master),
    ):
        wait_until_serving(url, master)
        with nginx(tls, f"unix:{sock}", directory / "nginx") as edge:
            yield edge, master
        assert master.poll() is None, "gunicorn died under the load"


def assert_no_secret_anywhere(directory: Path, *texts: str) -> None:
    """No key or token issued in this test run in any log under `directory` (nginx, gunicorn,
    the generators' own output) nor in `texts` (what the test prints or writes)."""
    assert leaked([logs_text(directory), *texts]) == []


# ---- The load --------------------------------------------------------------------------------


@dataclass
class Workload:
    seconds: float
    mix: dict[str, int]
    read_ids: list[str]
    names: list[str]
    identifiers: list[str]
    stop_file: Path | None = None  # its creation ends the load before `seconds`


def run_load(edge: Edge, tls: TlsFiles, load: list[LoadClient], work: Workload, out: Path):
    """Start one generator process per client; returns a function that waits and collects."""
    processes = []
    for number, client in enumerate(load):
        spec = {
            "name": client.name,
            "port": edge.port,
            "server_ca": str(tls.server_ca),
            "cert": client.cert,
            "key": client.key,
            "api_key": client.api_key,
            "token": client.token,
            "connections": client.connections,
            "seconds": work.seconds,
            "mix": work.mix,
            "read_ids": work.read_ids,
            "names": work.names,
            "identifiers": work.identifiers,
            "seed": 1000 * number,
            "stop_file": str(work.stop_file or ""),
            "out": str(out / f"{client.name}.jsonl"),
        }
        stderr = (out / f"{client.name}-stderr.log").open("wb")
        process = subprocess.Popen(  # our own module
            [sys.executable, "-m", "tests.faults.loadgen"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=stderr,
            stderr=stderr,
        )
        process.stdin.write(json.dumps(spec).encode())
        process.stdin.close()
        processes.append((process, client, stderr))

    def collect() -> list[dict]:
        records = []
        for process, client, stderr in processes:
            assert process.wait(timeout=work.seconds + 120) == 0, f"generator {client.name} failed"
            stderr.close()
            lines = (out / f"{client.name}.jsonl").read_text().splitlines()
            records.extend(json.loads(line) for line in lines)
        return records

    return collect


# ---- Worker memory -----------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


@dataclass
class RssSampler:
    """Every gunicorn worker's resident set size every RSS_EVERY seconds, in a thread."""

    master: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (time, pid, KiB)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for pid in children_of(self.master):
                kib = rss_kib(pid)
                if kib is not None:
                    self.samples.append((now, pid, kib))
            self._stop.wait(RSS_EVERY)

    def growth(self, start: float, end: float) -> dict[int, tuple[float, float]]:
        """Per worker: median RSS (MiB) of the first and of the last third of [start, end]."""
        third = (end - start) / 3
        result = {}
        for pid in sorted({pid for _, pid, _ in self.samples}):
            mine = [(t, kib / 1024) for t, p, kib in self.samples if p == pid and start <= t <= end]
            first = [mib for t, mib in mine if t < start + third]
            last = [mib for t, mib in mine if t >= end - third]
            if first and last:
                result[pid] = (statistics.median(first), statistics.median(last))
        return result


# ---- Figures -------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of them at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_table(records: list[dict], seconds: float) -> dict[str, dict]:
    """Per request kind (and all): count, rate, p50/p95/p99 ms and the statuses answered."""
    table = {}
    for kind in [*EXPECTED, "all"]:
        mine = [r for r in records if kind in ("all", r["kind"])]
        if not mine:
            continue
        answered = [r["ms"] for r in mine if r["status"]]
        table[kind] = {
            "requests": len(mine),
            "per_second": round(len(mine) / seconds, 1),
            "p50_ms": round(percentile(answered, 0.50), 1),
            "p95_ms": round(percentile(answered, 0.95), 1),
            "p99_ms": round(percentile(answered, 0.99), 1),
            "statuses": {str(s): n for s, n in sorted(Counter(r["status"] for r in mine).items())},
        }
    return table


def unexpected(records: list[dict]) -> list[dict]:
    """Answers other than the kind's success or a well-formed 429, and requests not answered."""
    found = []
    for record in records:
        if record["status"] in EXPECTED[record["kind"]]:
            continue
        if record["status"] == 429 and well_formed_refusal(record, "throttled"):
            continue
        found.append(record)
    return found


def well_formed_refusal(record: dict, code: str) -> bool:
    """An OperationOutcome with `code` and a Retry-After in whole seconds."""
    retry_after = record.get("retry_after") or ""
    return record.get("issue") == code and retry_after.isdigit()


def render_table(table: dict[str, dict]) -> str:
    lines = ["kind     requests   req/s   p50 ms   p95 ms   p99 ms  statuses"]
    for kind, row in table.items():
        statuses = " ".join(f"{s}:{n}" for s, n in row["statuses"].items())
        lines.append(
            f"{kind:<8} {row['requests']:>8} {row['per_second']:>7} {row['p50_ms']:>8} "
            f"{row['p95_ms']:>8} {row['p99_ms']:>8}  {statuses}"
        )
    return "\n".join(lines)


def write_result(name: str, result: dict) -> Path:
    """Merge this run's figures into var/loadtest.json under `name` (the closing note quotes it)."""
    path = Path(os.environ.get("LOAD_TEST_RESULTS", ROOT / "var" / "loadtest.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing[name] = result
    path.write_text(json.dumps(existing, indent=2) + "\n")
    return path
