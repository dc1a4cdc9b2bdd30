"""The benchmark harness works end to end: a tiny directory, two queries, one short round.

It measures nothing (a benchmark does that: `make bench`); it proves that both servers start,
the full server accepts the benchmark's credentials and that the table is written.
"""

from __future__ import annotations

import os
import shutil

import psycopg
import pytest
from django.db import connection

from bench import run

pytestmark = pytest.mark.bench


@pytest.fixture
def bench_database():
    if connection.vendor != "postgresql":
        pytest.skip("the benchmark runs on PostgreSQL")
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed (.ci/run installs it)")
        pytest.skip("wrk is not installed")
    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}"
    name = f"{db['NAME']}_bench"
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("edge", ["none", "nginx"])
def test_smoke_run_writes_a_table_without_failures(bench_database, tmp_path, edge):
    if edge == "nginx" and not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        pytest.skip("nginx is not installed")
    out = run.main(
        [
            "--database", bench_database, "--practitioners", "100", "--duration", "1",
            "--rounds", "1", "--concurrency", "2", "--queries", "0,1", "--workers", "1",
            "--work", str(tmp_path), "--out", str(tmp_path / "results.md"), "--edge", edge,
        ]
    )  # fmt: skip
    # Through nginx every request passed the handshake with the client certificate and the
    # app's own check of the certificate nginx forwarded: a refusal would count as failed.
    rates, _, costs = out.read_text().partition("CPU per request")
    rows = [line for line in rates.splitlines() if line.startswith(("| read", "| Practitioner?"))]
    assert len(rows) == 2
    for row in rows:
        cells = _cells(row)
        server_rps, floor_rps, failed = cells[2], cells[5], cells[9]
        assert float(server_rps.replace(",", "")) > 0
        assert float(floor_rps.replace(",", "")) > 0
        assert failed == "0"
    # Where each request's CPU went, per target: the server's own process did work for each.
    cpu = {(c[0], c[2]): c for c in map(_cells, costs.splitlines()) if c[0].startswith("read")}
    assert {"server", "floor"} <= {target for _, target in cpu}
    assert float(cpu[("read Practitioner/{id}", "server")][3]) > 0
    assert float(cpu[("read Practitioner/{id}", "server")][4]) > 0, "its database backend too"
    if edge == "nginx":
        assert float(cpu[("read Practitioner/{id}", "server")][5]) > 0, "and its edge nginx"


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_wrk_output_is_parsed():
    output = (
        "  Latency Distribution\n     50%  812.00us\n     75%    1.20ms\n     99%    1.50s\n"
        "  Non-2xx or 3xx responses: 3\nRequests/sec:    123.45\n"
    )
    parsed = run.parse_wrk(output)
    assert parsed == {"rps": 123.45, "requests": 0, "p50": 0.812, "p99": 1500.0, "errors": 3}
    counted = run.parse_wrk("  3702 requests in 3.00s, 4.33MB read\n" + output)
    assert counted["requests"] == 3702
