"""Measure bulk export throughput: resources written to NDJSON per second, per path.

Runs the same writer the export jobs use (directory/export.py) over every live resource of the
directory, into a temporary directory, on PostgreSQL's COPY path and on the portable keyset
path (the only one on SQLite). It measures; it asserts nothing.
"""

import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection

from directory import export, registry
from directory.statement_timeout import lift_statement_timeout


class Command(BaseCommand):
    help = "Export every live resource to NDJSON and report resources/s (COPY and portable)."

    def add_arguments(self, parser):
        parser.add_argument("--rounds", type=int, default=3, help="runs of each path")
        parser.add_argument(
            "--path", choices=["both", "copy", "keyset"], default="both", help="writer(s) to run"
        )

    def handle(self, *args, rounds, path, **options):
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
            started = time.perf_counter()
            for resource_type in job.types:
                target = Path(folder) / f"{resource_type}.ndjson"
                rows = export.export_rows(job, resource_type)
                written += export.write_file(rows, target, lambda n: None, fast=fast)
                size += target.stat().st_size
            elapsed = time.perf_counter() - started
        self.stdout.write(f"  {written:,} resources, {size / 1e6:,.1f} MB in {elapsed:.2f}s")
        return written / elapsed
