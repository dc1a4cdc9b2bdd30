"""Bulk import benchmark: resources/s and peak memory of `manage.py importndjson` on PostgreSQL.

For each size: the synthetic national directory (`generatedirectory --ndjson`) is written to an
NDJSON file, a fresh database is created, and the file is imported in a child process whose
wall time, CPU time and peak resident set size (its worker processes included; PostgreSQL's
backend not) are reported. Two sizes show whether memory stays flat as the file grows.

    .venv/bin/python bench/bulk_import.py --sizes 2000 20000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/import_bench"


def manage(database: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database}
    kwargs.setdefault("check", False)
    return subprocess.run(  # noqa: S603 - this interpreter and manage.py, fixed arguments
        [PYTHON, str(ROOT / "manage.py"), *args], env=env, text=True, **kwargs
    )


def fresh_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    manage(url, "migrate", "-v0", check=True, capture_output=True)


def measure(database: str, path: Path, workers: int, batch: int) -> tuple[float, float, int, str]:
    """(seconds, CPU seconds and peak RSS in MiB of the import and its workers, the command's
    summary). CPU counts what the machine's load does not: the rate's share of a shared box."""
    start = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = start.ru_maxrss
    started = time.monotonic()
    done = manage(
        database,
        "importndjson",
        str(path),
        "--quiet",
        f"--workers={workers}",
        f"--batch-size={batch}",
        capture_output=True,
    )
    elapsed = time.monotonic() - started
    end = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = end.ru_maxrss
    cpu = end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stdout}{done.stderr}")
    # ru_maxrss is the largest child so far: meaningful when this run's is the largest.
    return elapsed, cpu, max(peak, before) // 1024, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sorted(args.sizes):
        path = args.out / f"directory-{size}.ndjson"
        if not path.exists():
            manage(
                args.database,
                "generatedirectory",
                f"--practitioners={size}",
                f"--ndjson={path}",
                check=True,
                capture_output=True,
            )
        lines = path.read_bytes().count(b"\n")
        fresh_database(args.database)
        seconds, cpu, rss, summary = measure(args.database, path, args.workers, args.batch_size)
        rows.append((size, lines, path.stat().st_size >> 20, seconds, cpu, rss))
        print(summary, file=sys.stderr)
    print(
        "| practitioners | resources | file MiB | seconds | resources/s | CPU ms/resource "
        "| peak RSS MiB | load |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    load = os.getloadavg()[0]
    for size, lines, mib, seconds, cpu, rss in rows:
        print(
            f"| {size:,} | {lines:,} | {mib:,} | {seconds:,.1f} | {lines / seconds:,.0f} "
            f"| {cpu * 1000 / lines:.3f} | {rss:,} | {load:.1f} |"
        )


if __name__ == "__main__":
    main()
