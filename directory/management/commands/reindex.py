"""Rebuild the search index of stored resources (after an upgrade or a parameter change)."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from directory.registry import RESOURCE_TYPES
from directory.reindex import Progress, reindex
from directory.statement_timeout import lift_statement_timeout

PROGRESS_SECONDS = 5.0


class Command(BaseCommand):
    help = "Re-extract every live resource's search index rows from its content."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--type", dest="resource_type", choices=RESOURCE_TYPES)
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, resource_type: str, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be >= 1")
        lift_statement_timeout()  # a whole table outlasts the per-request statement timeout
        started, shown = time.monotonic(), [0.0]

        def report(progress: Progress) -> None:
            now = time.monotonic()
            if progress.done == progress.total or now - shown[0] >= PROGRESS_SECONDS:
                shown[0] = now
                self.stdout.write(f"{progress.resource_type}: {progress.done}/{progress.total}")

        results = reindex(resource_type, batch_size=batch_size, report=report)
        done = sum(p.done for p in results)
        self.stdout.write(f"Reindexed {done} resources in {time.monotonic() - started:.1f} s")
        failed = [name for p in results for name in p.failed]
        if failed:
            names = ", ".join(failed[:10])
            raise CommandError(f"{len(failed)} resource(s) could not be indexed: {names}")
