"""A bounded load through the deployment: nginx with mutual TLS, production gunicorn, Redis limits.

32 kept-alive connections (four times the benchmark's c=8) from five registered clients, each
with its certificate, API key and token, send a mix of reads, searches, creates and updates for
LOAD_TEST_SECONDS (60 s by default; longer locally to look for slow leaks). The request limits
are production's defaults, counted in Redis; four clients keep within their in-flight cap of 4,
the fifth opens 16 connections and must be told 429 with Retry-After. Every answer must be the
kind's success or such a 429: no 5xx, no other refusal, no request unanswered. Each worker's
memory must not grow over the run, no worker may die, and no issued secret may reach a log.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from tests.e2e.nginx_support import write_tls_files

from .conftest import REPORTED, WORKERS
from .processes import children_of
from .stack import (
    RssSampler,
    Workload,
    assert_no_secret_anywhere,
    deployment,
    latency_table,
    production_limits,
    register_load_clients,
    render_table,
    run_load,
    seed,
    unexpected,
    write_result,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECONDS = float(os.environ.get("LOAD_TEST_SECONDS", "60"))
# Long enough for every worker to have served each kind and filled its caches and connections.
WARM_UP = min(15.0, SECONDS / 5)
POLITE, GREEDY = [4] * 4, [16]  # connections per client; production's in-flight cap is 4
MIX = {"read": 40, "search": 30, "create": 15, "update": 15}
# A worker's RSS here is ~113 MiB, and grew 0.4-1.0 MiB between the medians over runs of 20-80 s
# (allocator arenas settling). A leak of 1 KiB a request, at 4-12 requests a second per worker,
# adds 0.25-0.7 MiB a minute: a 60 s run catches leaks of ~10 KiB a request, a 15-minute one
# ~1 KiB. 8 MiB is eight times the noise seen, independent of the run's length.
RSS_GROWTH_MIB = 8.0


def test_mixed_load_through_nginx_with_mutual_tls(
    production, credentials, pki, token_issuer, redis_server, tmp_path
):
    ids, names, identifiers = seed()
    tls = write_tls_files(pki, tmp_path)
    out = tmp_path / "load"
    out.mkdir()
    load = register_load_clients(
        pki, token_issuer, out, POLITE + GREEDY, lifetime=int(SECONDS) + 600
    )
    work = Workload(SECONDS, MIX, ids, names, identifiers)
    env = production_limits(production, redis_server.url)

    with deployment(env, tls, tmp_path, WORKERS) as (edge, master):
        workers = sorted(children_of(master.pid))
        with RssSampler(master.pid) as rss:
            started = time.monotonic()
            records = run_load(edge, tls, load, work, out)()
            ended = time.monotonic()
        assert sorted(children_of(master.pid)) == workers, "a worker died or was replaced"

    table = latency_table(records, ended - started)
    memory = rss.growth(started + WARM_UP, ended)
    statuses = Counter(r["status"] for r in records)
    greedy = Counter(r["status"] for r in records if r["client"] == load[-1].name)
    result = {
        "seconds": round(ended - started, 1),
        "connections": sum(c.connections for c in load),
        "clients": len(load),
        "workers": WORKERS,
        "latency": table,
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "unanswered": statuses[0],
        "throttled": statuses[429],
        "throttled_greedy_client": greedy[429],
        "rss_mib_first_last_third": [[round(a, 1), round(b, 1)] for a, b in memory.values()],
    }
    text = render_table(table)
    memory_text = ", ".join(f"{a:.1f}->{b:.1f}" for a, b in memory.values())
    REPORTED.append(
        (f"load {result['seconds']} s, {result['connections']} connections", text),
    )
    REPORTED.append(("worker RSS MiB, first -> last third", memory_text))
    path = write_result("load", result)
    redis_log = (redis_server.directory / "redis.log").read_text(errors="replace")
    assert_no_secret_anywhere(tmp_path, path.read_text(), text, json.dumps(records), redis_log)

    wrong = unexpected(records)
    assert wrong == [], f"{len(wrong)} unexpected answers, e.g. {wrong[:5]}"
    for kind in MIX:
        assert table[kind]["statuses"].get("200" if kind != "create" else "201"), kind
    assert greedy[429] > 0, "a client over its in-flight cap was never refused"
    assert len(memory) == WORKERS
    for first, last in memory.values():
        assert last - first < RSS_GROWTH_MIB, f"worker memory grew {first:.1f} -> {last:.1f} MiB"
