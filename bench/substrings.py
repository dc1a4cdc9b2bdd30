"""`:contains` searches walked (search/probes.py) against the trigram lookup alone, in process.

Each value is searched both ways in one process, on one database and under the same load: the
walk as the checkout decides it, and the search as before it (`:contains` conditions not
recognised by the walk, so neither counted nor walked). Both must give the same rows. Prints
per value the matching index rows (counted), the median and 95th percentile wall time of
`search()` both ways, and the buffers of one request's statements under `EXPLAIN (ANALYZE,
BUFFERS)`, each run as the request runs it (the walk's planner settings included).

    DATABASE_URL=postgres://.../db python -m bench.substrings --rounds 20 mit ohn zzq
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BUFFERS = re.compile(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("values", nargs="+", help="substrings searched with name:contains")
    parser.add_argument("--type", default="Practitioner")
    parser.add_argument("--param", default="name")
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from directory.models import StringIndex
    from directory.search import SearchRequest, probes, search

    walked_by = probes._substring

    def run(version: str, value: str) -> list[str]:
        probes._substring = walked_by if version == "after" else (lambda condition: None)  # type: ignore[assignment]
        request = SearchRequest(options.type, [(f"{options.param}:contains", value)])
        return [entry.row.logical_id for entry in search(request).entries]

    print(f"{options.type}?{options.param}:contains=; median / p95 ms of {options.rounds} rounds")
    for value in options.values:
        if run("before", value) != run("after", value):
            raise SystemExit(f"different rows: {value}")
        rows = StringIndex.objects.filter(
            resource_type=options.type, param=options.param, value__contains=value
        ).count()
        times: dict[str, list[float]] = {"before": [], "after": []}
        for round_ in range(options.rounds):
            for version in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
                started = time.perf_counter()
                run(version, value)
                times[version].append(1000 * (time.perf_counter() - started))
        figures = []
        for version in ("before", "after"):
            ordered = sorted(times[version])
            p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
            buffers = _buffers(lambda v=version, text=value: run(v, text))
            figures.append(f"{statistics.median(ordered):6.1f} / {p95:6.1f} ms, {buffers:7} buf")
        print(f"{value:12} rows {rows:8}   before {figures[0]}   after {figures[1]}")


def _buffers(request: Any) -> int:
    """Shared buffers (hit + read) of every SELECT `request()` runs, each explained where it
    ran (inside the walk's transaction, its settings in force), then run as usual."""
    from django.db import connection

    total = 0

    def explain(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal total
        if sql.startswith("SELECT") and "directory_" in sql:
            with context["connection"].connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                lines = [line for (line,) in cursor.fetchall()]
            for line in lines:
                if line.startswith("Planning"):
                    break
                found = BUFFERS.search(line)
                if found:  # the top node's: its children's included
                    total += sum(int(n or 0) for n in found.groups())
                    break
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        request()
    return total


if __name__ == "__main__":
    main()
