"""Re-extract stored resources' index rows after the search parameters changed.

Two ways in. `reindex()` walks the directory in the calling process (`manage.py reindex`, the
upgrade migration). A job is a row of `ReindexJob`: `POST [base]/$reindex` (or
`[base]/{type}/$reindex`) creates it and starts `run_job` in a daemon thread of the worker that
took the request; `manage.py reindexjob` runs or resumes jobs from the command line. The scan is a
keyset walk over `Resource.pk`: each batch is re-extracted in one transaction that also advances
`last_pk`, so a job whose runner died (worker killed, restarted) resumes after its last committed
batch with `manage.py reindexjob --resume` (jobs whose heartbeat is older than `STALE_SECONDS`),
and a re-extraction is idempotent, so nothing is lost or doubled.

Each batch locks its rows (`select_for_update`) while it re-extracts them: a concurrent update of
the same resource waits and then writes its own, newer, rows. Resources created after the scan
passed them were indexed by their write, with the new parameters, because the scan does not start
before `not_before` (job creation + the registry staleness bound, see customparams.py).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import indexing, registry, storage
from .errors import FHIRError
from .models import Resource
from .reindex_models import ReindexJob

__all__ = [
    "Progress",
    "ReindexJob",
    "finished_after",
    "reindex",
    "reindex_rows",
    "run_job",
    "start_job",
]

log = logging.getLogger(__name__)

BATCH_SIZE = 500
STALE_SECONDS = 120


def start_job(resource_type: str = "", *, background: bool = True) -> ReindexJob:
    """Queue a job (after the registry staleness bound) and, by default, run it in a thread."""
    from .customparams import refresh_seconds

    now = timezone.now()
    job = ReindexJob.objects.create(
        resource_type=resource_type,
        created=now,
        not_before=now + timedelta(seconds=refresh_seconds()),
        total=_rows(resource_type).count(),
    )
    if background:
        threading.Thread(target=_run_in_thread, args=(job.pk,), daemon=True).start()
    return job


def _run_in_thread(job_id: int) -> None:
    try:
        run_job(job_id)
    finally:
        connections.close_all()  # this thread's own connections; the worker's are untouched


def run_job(job_id: int, *, sleep: Callable[[float], object] | None = None) -> ReindexJob:
    """Run (or resume) a job to its end; a failure is recorded on the row, never raised."""
    import time

    sleep = sleep or time.sleep
    job = ReindexJob.objects.get(pk=job_id)
    wait = (job.not_before - timezone.now()).total_seconds()
    if wait > 0:
        sleep(wait)
    from .customparams import ensure_fresh

    ensure_fresh(force=True)  # this thread indexes with every active parameter
    ReindexJob.objects.filter(pk=job_id).update(
        state=ReindexJob.RUNNING, started=job.started or timezone.now(), heartbeat=timezone.now()
    )
    try:
        while _next_batch(job_id):
            pass
    except Exception as exc:  # recorded for the status URL; the job can be resumed
        log.exception("reindex job %s failed", job_id)
        ReindexJob.objects.filter(pk=job_id).update(
            state=ReindexJob.FAILED, error=f"{type(exc).__name__}: {exc}"[:500]
        )
    else:
        ReindexJob.objects.filter(pk=job_id).update(
            state=ReindexJob.DONE, finished=timezone.now(), heartbeat=timezone.now()
        )
        ensure_fresh(force=True)  # this worker's custom parameters become searchable now
    return ReindexJob.objects.get(pk=job_id)


def _rows(resource_type: str) -> QuerySet[Resource]:
    rows = Resource.objects.filter(deleted=False)
    if resource_type:
        return rows.filter(resource_type=resource_type)
    return rows.filter(resource_type__in=registry.RESOURCE_TYPES)


def _next_batch(job_id: int) -> bool:
    """Re-extract the next batch and advance the keyset in one transaction; False when done."""
    with transaction.atomic():
        job = ReindexJob.objects.select_for_update().get(pk=job_id)
        batch = list(
            _rows(job.resource_type)
            .filter(pk__gt=job.last_pk)
            .order_by("pk")
            .select_for_update()[:BATCH_SIZE]
        )
        if not batch:
            return False
        reindex_rows(batch)
        job.last_pk = batch[-1].pk
        job.done += len(batch)
        job.total = max(job.total, job.done)  # resources created since the job was counted
        job.heartbeat = timezone.now()
        job.save(update_fields=["last_pk", "done", "total", "heartbeat"])
    return True


def reindex_rows(rows: list[Resource], failed: list[str] | None = None) -> int:
    """Replace the index rows (and sort key) of these live resources with fresh extractions.

    Call inside a transaction with the rows locked. A resource whose content no longer extracts
    (a parameter's expression fails on it) keeps its old rows and is named in `failed`.
    """
    items = []
    for row in rows:
        try:
            items.append((row, indexing.extract(row.resource_type, json.loads(row.live_content()))))
        except (FHIRError, ValueError):
            if failed is not None:
                failed.append(f"{row.resource_type}/{row.logical_id}")
    storage.replace_index_rows(items)
    changed = [row for row, extracted in items if row.sort_name != extracted.sort_name]
    for row, extracted in items:
        row.sort_name = extracted.sort_name
    Resource.objects.bulk_update(changed, ["sort_name"], batch_size=BATCH_SIZE)
    return len(items)


# ---------------------------------------------------------------- in the calling process


@dataclass
class Progress:
    resource_type: str
    done: int
    total: int
    failed: list[str] = field(default_factory=list)  # `Type/id` of resources left as they were


def reindex(
    resource_type: str | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    report: Callable[[Progress], None] | None = None,
) -> list[Progress]:
    """Rebuild the index rows and sort keys of every live resource (of one type, or all)."""
    if resource_type is not None and resource_type not in registry.RESOURCE_TYPES:
        raise ValueError(f"Unknown resource type '{resource_type}'")
    results = []
    for rtype in [resource_type] if resource_type else registry.RESOURCE_TYPES:
        live = Resource.objects.filter(resource_type=rtype, deleted=False)
        progress = Progress(rtype, 0, live.count())
        last_pk = 0
        while True:
            with transaction.atomic():
                batch = list(
                    live.filter(pk__gt=last_pk).order_by("pk").select_for_update()[:batch_size]
                )
                if not batch:
                    break
                reindex_rows(batch, progress.failed)
            progress.done += len(batch)
            last_pk = batch[-1].pk
            if report is not None:
                report(progress)
        results.append(progress)
    return results


def finished_after(resource_type: str, moment: datetime) -> bool:
    """Whether a job covering `resource_type` and created at or after `moment` has finished."""
    jobs = ReindexJob.objects.filter(state=ReindexJob.DONE, created__gte=moment)
    return jobs.filter(resource_type__in=("", resource_type)).exists()


def stale_jobs() -> list[ReindexJob]:
    """Queued or running jobs whose runner shows no sign of life (to resume)."""
    limit = timezone.now() - timedelta(seconds=STALE_SECONDS)
    jobs = ReindexJob.objects.filter(state__in=(ReindexJob.QUEUED, ReindexJob.RUNNING))
    return [j for j in jobs.order_by("pk") if (j.heartbeat or j.not_before) < limit]
