"""Import NDJSON files (one FHIR resource per line), the operator's side of `$import`."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from directory import bulkimport, statistics
from directory.statement_timeout import lift_statement_timeout

PROGRESS_SECONDS = 1.0


class Command(BaseCommand):
    help = (
        "Import NDJSON files: each line validated as the API validates it, good lines stored, "
        "refused ones written with their line numbers to an NDJSON OperationOutcome file. "
        "Exits with status 1 when any line was refused."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", help="NDJSON files")
        parser.add_argument(
            "--errors",
            help="OperationOutcome NDJSON for refused lines (default: FILE.errors.ndjson per file)",
        )
        parser.add_argument("--batch-size", type=int, help="Resources per transaction")
        parser.add_argument(
            "--workers", type=int, default=1, help="Processes validating lines (2 on 2 cores)"
        )
        parser.add_argument("--quiet", action="store_true", help="No progress on stderr")

    def handle(
        self,
        *args: Any,
        paths: list[str],
        errors: str | None,
        batch_size: int | None,
        workers: int,
        quiet: bool,
        **options: Any,
    ) -> None:
        lift_statement_timeout()  # bulk work outlasts the per-request statement timeout
        files = [Path(p) for p in paths]
        for path in files:
            if not path.is_file():
                raise CommandError(f"Cannot read {path}")
        progress = Progress(None if quiet else self.stderr, sum(map(bulkimport.count_lines, files)))
        refused = 0
        for path in files:
            error_path = Path(errors) if errors else path.with_name(path.name + ".errors.ndjson")
            with open(error_path, "a" if errors else "w", encoding="utf-8") as out:
                summary = bulkimport.import_file(
                    path,
                    bulkimport.ErrorFile(out),
                    batch_size=batch_size,
                    workers=workers,
                    progress=progress.update,
                )
            progress.file_done(summary)
            refused += summary.errors
            self.report(path, summary, error_path)
        progress.finish()
        statistics.refresh_after_load(progress.stored)
        if refused:
            raise CommandError(f"{refused} line(s) refused; see the error file(s)", returncode=1)

    def report(self, path: Path, summary: bulkimport.Summary, error_path: Path) -> None:
        parts = ", ".join(f"{t} {n:,}" for t, n in sorted(summary.counts.items()))
        self.stdout.write(
            f"{path}: {summary.lines:,} lines, {summary.stored:,} stored ({parts or 'none'}), "
            f"{summary.errors:,} refused, {summary.warnings:,} warning(s)"
        )
        if summary.errors or summary.warnings:
            self.stdout.write(f"  details: {error_path}")


class Progress:
    """`lines done/total, stored, refused, rate` on stderr, once a second."""

    def __init__(self, stream: OutputWrapper | None, total: int) -> None:
        self.stream = stream
        self.total = total
        self.before = 0  # lines of the files already done
        self.started = time.monotonic()
        self.last = 0.0
        self.stored = self.refused = 0

    def update(self, summary: bulkimport.Summary, force: bool = False) -> None:
        now = time.monotonic()
        if self.stream is None or (not force and now - self.last < PROGRESS_SECONDS):
            return
        self.last = now
        done = self.before + summary.lines
        stored, refused = self.stored + summary.stored, self.refused + summary.errors
        rate = done / max(now - self.started, 1e-9)
        percent = 100 * done // self.total if self.total else 100
        text = (
            f"{done:,}/{self.total:,} lines ({percent}%)  {stored:,} stored  "
            f"{refused:,} refused  {rate:,.0f} lines/s"
        )
        # Rewritten in place on a terminal; one line each in a log.
        self.stream.write(f"\r{text}" if self.stream.isatty() else f"{text}\n", ending="")
        self.stream.flush()

    def file_done(self, summary: bulkimport.Summary) -> None:
        self.update(summary, force=True)
        self.before += summary.lines
        self.stored += summary.stored
        self.refused += summary.errors

    def finish(self) -> None:
        if self.stream is not None and self.stream.isatty():
            self.stream.write("\n", ending="")
            self.stream.flush()
