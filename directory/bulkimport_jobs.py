"""Import jobs: the spool file an `$import` upload is streamed to, and the thread that imports it.

`$import` (fhirapi/bulk_import.py) streams the client's NDJSON into a spool file under
FHIR_IMPORT_SPOOL_DIR, refusing more than FHIR_IMPORT_MAX_BYTES, then creates an `ImportJob` and
runs it in a daemon thread of the worker that took the request (as `$reindex` runs). The job writes
its progress to its row, so any worker can answer the status URL; it checks for cancellation
between batches. Finished jobs keep their error file until `purge` removes them.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone

from . import bulkimport, statistics
from .bulkimport_models import ImportJob

__all__ = ["ImportJob", "SpoolTooLarge", "create_job", "purge", "run_job", "spool", "start_job"]

log = logging.getLogger(__name__)

# A running job records its progress after every batch (seconds apart): one silent for this long
# lost its runner (the worker was killed or restarted) and is reported failed.
STALE_SECONDS = 300


class SpoolTooLarge(Exception):
    """The input is over FHIR_IMPORT_MAX_BYTES; the partial spool file is already removed."""


def spool_dir() -> Path:
    path = Path(settings.FHIR_IMPORT_SPOOL_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def spool(chunks: Iterable[bytes], limit: int | None = None) -> tuple[Path, int]:
    """Write `chunks` to a new spool file; (path, size). Over `limit`: removed, SpoolTooLarge."""
    limit = settings.FHIR_IMPORT_MAX_BYTES if limit is None else limit
    handle, name = tempfile.mkstemp(prefix="import-", suffix=".ndjson", dir=spool_dir())
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise SpoolTooLarge()
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), size


def discard(path: Path) -> None:
    Path(path).unlink(missing_ok=True)


def create_job(
    spool_path: Path, size: int, *, owner: str, writable: Iterable[str] | None, request_url: str
) -> ImportJob:
    job = ImportJob.objects.create(
        owner=owner,
        writable_types=sorted(writable) if writable is not None else None,
        request_url=request_url[:500],
        spool_path=str(spool_path),
        size_bytes=size,
        created=timezone.now(),
    )
    job.error_path = str(spool_dir() / f"errors-{job.pk}.ndjson")
    job.save(update_fields=["error_path"])
    return job


def start_job(job: ImportJob) -> None:
    threading.Thread(target=_run_in_thread, args=(job.pk,), daemon=True).start()


def _run_in_thread(job_id: str) -> None:
    try:
        run_job(job_id)
    finally:
        connections.close_all()  # this thread's own connections; the worker's are untouched


def run_job(job_id: str) -> ImportJob:
    """Run a queued job to its end; the outcome (or failure) is recorded on its row."""
    job = ImportJob.objects.get(pk=job_id)
    now = timezone.now()
    total = bulkimport.count_lines(job.spool_path)
    ImportJob.objects.filter(pk=job_id).update(
        state=ImportJob.RUNNING, started=now, heartbeat=now, lines_total=total
    )
    writable = frozenset(job.writable_types) if job.writable_types is not None else None
    try:
        with open(job.error_path, "w", encoding="utf-8") as errors:
            summary = bulkimport.import_file(
                job.spool_path,
                bulkimport.ErrorFile(errors),
                writable=writable,
                progress=lambda s: _record(job_id, s),
                cancelled=lambda: _cancel_requested(job_id),
            )
    except bulkimport.Cancelled:
        _finish(job_id, ImportJob.CANCELLED)
    except Exception as exc:  # recorded for the status URL
        log.exception("import job %s failed", job_id)
        _finish(job_id, ImportJob.FAILED, failure=type(exc).__name__)
    else:
        _record(job_id, summary)
        statistics.refresh_after_load(summary.stored)
        _finish(job_id, ImportJob.DONE)
    return ImportJob.objects.get(pk=job_id)


def _record(job_id: str, summary: bulkimport.Summary) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        lines_done=summary.lines,
        counts=dict(summary.counts),
        errors=summary.errors,
        warnings=summary.warnings,
        heartbeat=timezone.now(),
    )


def _cancel_requested(job_id: str) -> bool:
    return ImportJob.objects.filter(pk=job_id, cancel_requested=True).exists()


def _finish(job_id: str, state: str, failure: str = "") -> None:
    job = ImportJob.objects.get(pk=job_id)
    Path(job.spool_path).unlink(missing_ok=True)  # the input is imported; keep no copy of it
    if state == ImportJob.CANCELLED:
        Path(job.error_path).unlink(missing_ok=True)
    ImportJob.objects.filter(pk=job_id).update(
        state=state, finished=timezone.now(), heartbeat=timezone.now(), failure=failure
    )


def check_alive(job: ImportJob) -> ImportJob:
    """The job, marked failed if its runner stopped without finishing it."""
    if job.state not in (ImportJob.QUEUED, ImportJob.RUNNING):
        return job
    last = job.heartbeat or job.created
    if (timezone.now() - last).total_seconds() > STALE_SECONDS:
        _finish(job.pk, ImportJob.FAILED, failure="runner stopped")
        job.refresh_from_db()
    return job


def cancel(job: ImportJob) -> None:
    """Ask a running job to stop after its current batch; a queued or finished one ends now."""
    ImportJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    if job.state in (ImportJob.DONE, ImportJob.FAILED):
        _finish(job.pk, ImportJob.CANCELLED)


def purge(now: datetime | None = None) -> int:
    """Remove finished jobs older than FHIR_IMPORT_KEEP_SECONDS, with their files."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.FHIR_IMPORT_KEEP_SECONDS)
    old = ImportJob.objects.filter(finished__lt=cutoff)
    for job in old:
        Path(job.spool_path).unlink(missing_ok=True)
        Path(job.error_path).unlink(missing_ok=True)
    return old.delete()[0]
