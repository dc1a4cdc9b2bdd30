"""The floor under an import's rate: the CPU that checking and storing one resource cannot avoid.

Both parts are CPU time, so the machine's load changes them little:

- in this process, over an NDJSON file, per line: parsing with the API's checks, the structural
  model (fhir.resources), the rules the StructureDefinitions drive (invariants, bindings,
  profiles, NPI, boundaries) and the extraction of index rows. Every line must pass the first
  three (an import validates as a create does); extraction is what makes it searchable;
- in PostgreSQL, over what an import of that file stored (`--database`, e.g. the database
  `bench/bulk_import.py` last filled): its resource, version and index rows copied back into empty
  tables with the same indexes and foreign key, the backend's own CPU read from /proc. The rows
  arrive ready-made, so this is the database's share alone, without look-ups or formatting.

    .venv/bin/python -m bench.import_floor --file var/bench/directory-20000.ndjson \\
        --database postgres://postgres@127.0.0.1:5432/import_bench
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import cpu

BLOCK = 1 << 20


def _timed(label: str, work: Callable[[Any], object], items: list) -> tuple[str, float]:
    """CPU ms an item of `work`, the better of two passes (the first warms the caches). Results
    are dropped as made: kept, tens of thousands of models make the collector's passes the cost."""
    best = float("inf")
    for _ in range(2):
        started = time.process_time()
        for item in items:
            work(item)
        best = min(best, time.process_time() - started)
    return label, best * 1000 / len(items)


def validation_parts(path: Path) -> list[tuple[str, float]]:
    from fhir.resources.R4B import get_fhir_model_class

    from directory import indexing
    from directory.validation import parse_json, validate_resource

    raw = [line for line in path.read_bytes().splitlines() if line.strip()]
    contents = [parse_json(line) for line in raw]
    pairs = [(content["resourceType"], content) for content in contents]
    return [
        _timed("parse (JSON, depth and NUL checks)", parse_json, raw),
        _timed(
            "structure (fhir.resources)",
            lambda p: get_fhir_model_class(p[0]).model_validate(p[1]),
            pairs,
        ),
        _timed(
            "validation as a write's (structure and rules)",
            lambda p: validate_resource(p[0], p[1], canonical=False),
            pairs,
        ),
        _timed("extraction (index rows)", lambda p: indexing.extract(*p), pairs),
    ]


def _resources_table() -> str:
    from directory.models import Resource

    return Resource._meta.db_table


def _tables() -> list[tuple[str, bool]]:
    """(table, whether it has the foreign key to resources) for every table an import fills."""
    from directory.statistics import loaded_tables

    resources = _resources_table()
    return [(model._meta.db_table, model._meta.db_table != resources) for model in loaded_tables()]


def storage_parts(database: str, resources: int) -> list[tuple[str, float]]:
    """Backend CPU ms a resource of COPYing each table's rows into an empty copy of it."""
    parts = []
    with psycopg.connect(database) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        for table, keyed in _tables():
            seconds = _copy_back(conn, pid, table, keyed)
            if seconds is not None:
                parts.append((f"COPY into {table}", seconds * 1000 / resources))
    return parts


def _copy_back(conn: psycopg.Connection, pid: int, table: str, keyed: bool) -> float | None:
    source, copy = sql.Identifier(table), sql.Identifier(f"floor_{table}")
    with tempfile.TemporaryFile() as spool:
        with conn.cursor().copy(sql.SQL("COPY {} TO STDOUT").format(source)) as out:
            for block in out:
                spool.write(block)
        if not spool.tell():
            return None
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(copy, source))
        if keyed:
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD FOREIGN KEY (resource_id)"
                    " REFERENCES {} (id) DEFERRABLE INITIALLY DEFERRED"
                ).format(copy, sql.Identifier(_resources_table()))
            )
        conn.commit()
        spool.seek(0)
        try:
            before = cpu.cpu_seconds(pid)
            with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(copy)) as into:
                while block := spool.read(BLOCK):
                    into.write(block)
            conn.commit()  # the deferred foreign-key checks run here
            return cpu.cpu_seconds(pid) - before
        finally:
            conn.rollback()  # a COPY that failed leaves the transaction aborted
            conn.execute(sql.SQL("DROP TABLE {}").format(copy))
            conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DATABASE_URL"] = args.database
    import django

    django.setup()
    checks = validation_parts(args.file)
    with psycopg.connect(args.database) as conn:
        counted = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(_resources_table()))
        resources = conn.execute(counted).fetchone()[0]
    stored = storage_parts(args.database, resources)
    print(f"{args.file.name}; {resources:,} resources stored in the database")
    print("| part | CPU ms a resource |")
    print("|---|---:|")
    for label, ms in checks + stored:
        print(f"| {label} | {ms:.3f} |")
    # Structure is part of validation as a write's; the other three are each counted once.
    prepared = checks[0][1] + checks[2][1] + checks[3][1]
    floor = prepared + sum(ms for _, ms in stored)
    print(f"| parse, validation and extraction | {prepared:.3f} |")
    print(f"| floor: those and the database's COPY | {floor:.3f} |")
    print(f"| at most, on 2 busy cores | {2000 / floor:,.0f} resources/s |")


if __name__ == "__main__":
    main()
