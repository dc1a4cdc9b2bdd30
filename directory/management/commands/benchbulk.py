"""Measure bulk export throughput: resources written to NDJSON per second, per path.

Runs the same writer the export jobs use (directory/export.py) over every live resource of the
directory, into a temporary directory, on PostgreSQL's COPY path and on the portable keyset
path (the only one on SQLite). It measures; it asserts nothing.
"""

import os
import tempfile
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

from directory import export, registry
from directory.statement_timeout import lift_statement_timeout


class Command(BaseCommand):
    help = "Export every live resource to NDJSON and report resources/s (COPY and portable)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--rounds", type=int, default=3, help="runs of each path")
        parser.add_argument(
            "--path", choices=["both", "copy", "keyset"], default="both", help="writer(s) to run"
        )

    def handle(self, *args: Any, rounds: int, path: str, **options: Any) -> None:
        lift_statement_timeout()
        paths = ["copy", "keyset"] if path == "both" else [path]
        if connection.vendor != "postgresql":
            paths = [p for p in paths if p == "keyset"]
        for name in paths:
            rates = [self._round(name == "copy") for _ in range(rounds)]
            best, median = max(rates), sorted(rates)[len(rates) // 2]
            self.stdout.write(
                f"{name}: median {median:,.0f} resources/s, best {best:,.0f} ({rounds} rounds)"
            )

    def _round(self, fast: bool) -> float:
        job = export.ExportJob(types=list(registry.RESOURCE_TYPES), type_filters={})
        written, size = 0, 0
        with tempfile.TemporaryDirectory() as folder:
            started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
            for resource_type in job.types:
                target = Path(folder) / f"{resource_type}.ndjson"
                rows = export.export_rows(job, resource_type)
                written += export.write_file(rows, target, lambda n: None, fast=fast)
                size += target.stat().st_size
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            server = _server_cpu() - server
        # The exporter's own CPU time: on a shared machine a steadier figure than the wall clock
        # (the database server's share is not in it).
        self.stdout.write(
            f"  {written:,} resources, {size / 1e6:,.1f} MB in {elapsed:.2f}s "
            f"(CPU: exporter {cpu:.2f}s, database backend {server:.2f}s; "
            f"{written / (cpu + server):,.0f} resources per CPU-second)"
        )
        return written / elapsed


def _server_cpu() -> float:
    """CPU seconds of this connection's PostgreSQL backend, when the server runs on this host
    (read from /proc); 0 elsewhere, e.g. on SQLite, whose work is in this process anyway."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
