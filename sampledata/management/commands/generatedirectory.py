"""Generate and load a synthetic directory of any size, streaming in batches."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import IntegrityError, connections

from directory import bulkload, statistics, storage
from directory.errors import FHIRError
from directory.models import Resource
from directory.registry import RESOURCE_TYPES
from directory.statement_timeout import lift_statement_timeout
from sampledata.generator import BLOCK, DirectoryGenerator, Group

PROGRESS_SECONDS = 5.0


class Command(BaseCommand):
    help = "Generate a realistic synthetic directory and load it through bulkload.bulk_load."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--practitioners", type=int, required=True)
        parser.add_argument(
            "--organizations", type=int, help="Top-level organizations (default: 1 per 40)"
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=2000, help="Resources per batch")
        parser.add_argument(
            "--no-reference-check",
            action="store_true",
            help="Skip bulk_load's reference lookups (the generator only emits valid ones)",
        )
        parser.add_argument(
            "--workers", type=int, default=1, help="Processes loading practitioner blocks"
        )
        parser.add_argument(
            "--ndjson",
            metavar="FILE",
            help="Write the directory to FILE as NDJSON (for importndjson / $import), load nothing",
        )

    def handle(
        self,
        *args: Any,
        practitioners: int,
        organizations: int | None,
        seed: int,
        batch_size: int,
        **options: Any,
    ) -> None:
        lift_statement_timeout()  # bulk work outlasts the per-request statement timeout
        if practitioners < 0 or batch_size < 1:
            raise CommandError("--practitioners must be >= 0 and --batch-size >= 1")
        organizations = organizations or max(1, practitioners // 40)
        generator = DirectoryGenerator(
            practitioners,
            organizations,
            seed,
            link_services="HealthcareService" in RESOURCE_TYPES,
        )
        if options["ndjson"]:
            write_ndjson(generator, options["ndjson"], self.stdout)
            return
        refuse_if_generated(generator)
        loader = BatchLoader(self.stdout, batch_size, not options["no_reference_check"])
        try:
            # Payer groups (coverage areas, then each payer) come first, then the organizations.
            expected = generator.payers + 1 + organizations
            loader.load("organizations", generator.organization_groups(), expected)
            if options["workers"] > 1:
                load_in_parallel(loader, generator, options["workers"])
            else:
                loader.load("practitioners", generator.practitioner_groups(), practitioners)
        except (FHIRError, IntegrityError) as exc:
            raise CommandError(
                f"Load stopped: {exc}; batches already committed stay in the database"
            ) from None
        statistics.refresh_after_load(sum(loader.counts.values()))
        loader.summary()


def write_ndjson(generator: DirectoryGenerator, path: str, stdout: OutputWrapper) -> None:
    """One resource per line, in the generator's order (referenced resources first)."""
    counts: Counter[str] = Counter()
    with open(path, "w", encoding="utf-8") as out:
        for groups in (generator.organization_groups(), generator.practitioner_groups()):
            for group in groups:
                for rtype, content in group:
                    if rtype in RESOURCE_TYPES:
                        out.write(storage.dumps(content) + "\n")
                        counts[rtype] += 1
    parts = ", ".join(f"{t} {n:,}" for t, n in sorted(counts.items()))
    stdout.write(f"Wrote {sum(counts.values()):,} resources to {path}: {parts}")


_worker_state: dict[str, Any] = {}


def load_in_parallel(loader: BatchLoader, generator: DirectoryGenerator, workers: int) -> None:
    """Blocks go to forked workers; each block's output depends only on the seed, not the worker."""
    blocks = range(-(-generator.practitioners // BLOCK))
    connections.close_all()  # a forked child must not share the parent's socket
    _worker_state.update(generator=generator, loader=loader)
    context = multiprocessing.get_context("fork")
    done = 0
    with context.Pool(workers) as pool:
        for counts, unsupported in pool.imap_unordered(_load_block, blocks):
            loader.counts.update(counts)
            loader.unsupported.update(unsupported)
            done += sum(n for t, n in counts.items() if t == "Practitioner")
            loader.progress("practitioners", done, generator.practitioners)
    loader.progress("practitioners", done, generator.practitioners, force=True)


def _load_block(block: int) -> tuple[Counter[str], Counter[str]]:
    generator, parent = _worker_state["generator"], _worker_state["loader"]
    loader = BatchLoader(None, parent.batch_size, parent.check_references)
    loader.load("", generator.block_groups(block), 0, report=False)
    return loader.counts, loader.unsupported


def refuse_if_generated(generator: DirectoryGenerator) -> None:
    rtype, rid = generator.first_id
    if Resource.objects.filter(resource_type=rtype, logical_id=rid).exists():
        raise CommandError(
            f"{rtype}/{rid} already exists: seed {generator.seed} was loaded before; "
            "use another --seed or a fresh database"
        )


class BatchLoader:
    """Packs groups into batches for bulk_load and reports progress and throughput."""

    def __init__(
        self, stdout: OutputWrapper | None, batch_size: int, check_references: bool
    ) -> None:
        self.stdout = stdout  # None in a worker, which reports nothing: the parent does
        self.batch_size = batch_size
        self.check_references = check_references
        self.counts: Counter[str] = Counter()
        self.unsupported: Counter[str] = Counter()
        self.started = time.monotonic()
        self.last_report = self.started

    def load(self, label: str, groups: Iterable[Group], expected: int, report: bool = True) -> None:
        batch: Group = []
        done = 0
        for group in groups:
            # Groups stay whole: an Organization and its Endpoints reference each other.
            if batch and len(batch) + len(group) > self.batch_size:
                self.flush(batch)
                if report:
                    self.progress(label, done, expected)
                batch = []
            batch.extend(self.storable(group))
            done += 1
        if batch:
            self.flush(batch)
        if report:
            self.progress(label, done, expected, force=True)

    def storable(self, group: Group) -> Group:
        """The group without resources of types this server does not store; those are counted.

        The generator writes every national-directory type; a server without one of them still
        gets the rest (nothing it stores references the missing ones).
        """
        kept = [(rtype, content) for rtype, content in group if rtype in RESOURCE_TYPES]
        if len(kept) < len(group):
            self.unsupported.update(t for t, _ in group if t not in RESOURCE_TYPES)
        return kept

    def flush(self, batch: Group) -> None:
        bulkload.bulk_load(batch, batch_size=len(batch), check_references=self.check_references)
        self.counts.update(rtype for rtype, _ in batch)

    def progress(self, label: str, done: int, expected: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.stdout is None or (not force and now - self.last_report < PROGRESS_SECONDS):
            return
        self.last_report = now
        total = sum(self.counts.values())
        rate = total / max(now - self.started, 1e-9)
        self.stdout.write(
            f"{label}: {done:,}/{expected:,}  resources {total:,}  {rate:,.0f} resources/s"
        )

    def summary(self) -> None:
        if self.stdout is None:
            return
        elapsed = time.monotonic() - self.started
        total = sum(self.counts.values())
        parts = ", ".join(f"{t} {n:,}" for t, n in sorted(self.counts.items()))
        self.stdout.write(
            f"Loaded {total:,} resources in {elapsed:,.1f} s "
            f"({total / max(elapsed, 1e-9):,.0f} resources/s): {parts}"
        )
        if self.unsupported:
            parts = ", ".join(f"{t} {n:,}" for t, n in sorted(self.unsupported.items()))
            self.stdout.write(f"Not stored, type not supported by this server: {parts}")
