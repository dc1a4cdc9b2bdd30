"""FHIR Bulk Data export jobs: the stored JSON of every matching resource, one NDJSON file a type.

A job is a row of `ExportJob`. The API's kick-off (`fhirapi/bulk.py`) creates it and, by default
(BULK_EXPORT_RUN_IN_THREAD), runs it in a daemon thread of the worker that took the request;
`manage.py runexports` runs queued jobs in its own process (systemd, Kubernetes) and restarts jobs
whose runner died. A restarted job starts over: its files are rewritten from the beginning and
its transactionTime moves to the restart, so what it returns is exactly what a new job would.

Files are written straight from the database without holding a type in memory: on PostgreSQL
`COPY (SELECT content ...) TO STDOUT`, row by row as the server sends them; elsewhere keyset reads
of CHUNK rows on the primary key. Either way the bytes are the stored text, never re-encoded.

transactionTime is the run's start less WRITE_MARGIN. A write stamps its `lastUpdated` before
it commits, so a write stamped just before the run began may commit after the scan passed it;
the margin lets the next `_since=transactionTime` export (or `_history?_since=`) catch it. A
resource changed while the job runs is exported in the version the scan finds (possibly newer
than transactionTime) and again by the next incremental export: a sync consumer sees every
change at least once, never none.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q, QuerySet
from django.utils import timezone

from .export_models import ExportJob
from .models import Resource

__all__ = [
    "ExportJob",
    "ExportRequest",
    "cancel_job",
    "file_path",
    "purge_expired",
    "run_job",
    "runnable_jobs",
    "start_job",
]

log = logging.getLogger(__name__)

WRITE_MARGIN = timedelta(seconds=60)
# A running job whose heartbeat is older than this has lost its runner (`runexports` restarts it).
STALE_SECONDS = 120
HEARTBEAT_SECONDS = 5
CHUNK = 2000  # rows per keyset read on the portable path
PURGE_BATCH = 5  # expired jobs dropped per API request; `purgeexports` does the rest
FILE_SUFFIX = ".ndjson"

Pairs = list[tuple[str, str]]


class Stopped(Exception):
    """The job was cancelled or purged while it ran: stop writing, leave nothing behind."""


@dataclass
class ExportRequest:
    """A validated kick-off: who asked, for which types, since when, with which filters."""

    owner: str
    request_url: str
    types: list[str]
    since: datetime | None = None
    type_filters: dict[str, list[Pairs]] = field(default_factory=dict)


# ---------------------------------------------------------------- jobs


def start_job(request: ExportRequest, *, background: bool | None = None) -> ExportJob:
    """Queue a job and, when configured (the default), run it in a daemon thread."""
    now = timezone.now()
    job = ExportJob.objects.create(
        key=secrets.token_urlsafe(32),
        owner=request.owner,
        request_url=request.request_url,
        types=request.types,
        since=request.since,
        type_filters=request.type_filters,  # pairs are stored as JSON lists
        created=now,
        expires=now + _retention(),
    )
    if settings.BULK_EXPORT_RUN_IN_THREAD if background is None else background:
        threading.Thread(target=_run_in_thread, args=(job.pk,), daemon=True).start()
    return job


def active_jobs(owner: str) -> int:
    return ExportJob.objects.filter(
        owner=owner, state__in=(ExportJob.QUEUED, ExportJob.RUNNING)
    ).count()


def _run_in_thread(job_id: int) -> None:
    try:
        run_job(job_id)
    finally:
        connections.close_all()  # this thread's own connections; the worker's are untouched


def _retention() -> timedelta:
    return timedelta(seconds=settings.BULK_EXPORT_RETENTION_SECONDS)


def runnable_jobs() -> list[int]:
    """Queued jobs, and running ones whose runner shows no sign of life, oldest first."""
    stale = timezone.now() - timedelta(seconds=STALE_SECONDS)
    waiting = Q(state=ExportJob.QUEUED) | Q(state=ExportJob.RUNNING, heartbeat__lt=stale)
    return list(ExportJob.objects.filter(waiting).order_by("pk").values_list("pk", flat=True))


def _claim(job_id: int) -> bool:
    """Take the job for this runner: one conditional UPDATE, so two runners never share one."""
    now = timezone.now()
    stale = now - timedelta(seconds=STALE_SECONDS)
    waiting = Q(state=ExportJob.QUEUED) | Q(state=ExportJob.RUNNING, heartbeat__lt=stale)
    claimed = ExportJob.objects.filter(waiting, pk=job_id).update(
        state=ExportJob.RUNNING,
        started=now,
        heartbeat=now,
        transaction_time=now - WRITE_MARGIN,
        output=[],
        done=0,
        error="",
    )
    return claimed == 1


def run_job(job_id: int) -> ExportJob | None:
    """Run a queued (or restart a stalled) job to its end; None when it is gone or taken.

    A failure is recorded on the row and logged, never raised: the status URL reports it.
    """
    if not _claim(job_id):
        return ExportJob.objects.filter(pk=job_id).first()
    _no_statement_timeout()
    job = ExportJob.objects.get(pk=job_id)
    directory = job_dir(job)
    shutil.rmtree(directory, ignore_errors=True)  # a restart's partial files
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # no one else lists jobs
    directory.mkdir(mode=0o700)
    try:
        _write_all(job)
    except Stopped:
        shutil.rmtree(directory, ignore_errors=True)
        return None
    except Exception as exc:  # recorded for the status URL
        log.exception("export job %s failed", job_id)
        shutil.rmtree(directory, ignore_errors=True)
        _update(job, state=ExportJob.FAILED, error=f"{type(exc).__name__}: {exc}"[:500])
    else:
        now = timezone.now()
        _update(job, state=ExportJob.DONE, finished=now, heartbeat=now, expires=now + _retention())
    return ExportJob.objects.filter(pk=job_id).first()


def _no_statement_timeout() -> None:
    """A whole type outlasts the per-request statement timeout. SET on this thread's own
    connection only: the settings' OPTIONS are shared by every thread of the worker."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")


def _update(job: ExportJob, **fields: Any) -> None:
    """Save fields of a running job; Stopped when it was cancelled or purged meanwhile."""
    if not ExportJob.objects.filter(pk=job.pk, state=ExportJob.RUNNING).update(**fields):
        raise Stopped


def _write_all(job: ExportJob) -> None:
    querysets = {t: export_rows(job, t) for t in job.types}
    _update(job, total=sum(rows.count() for rows in querysets.values()))
    pulse = _Pulse(job)
    try:
        for resource_type, rows in querysets.items():
            count = write_file(rows, file_path(job, resource_type), pulse)
            job.output.append({"type": resource_type, "count": count})
            _update(job, output=job.output, done=pulse.done, heartbeat=timezone.now())
    finally:
        pulse.close()


class _Pulse:
    """Counts rows written and, every HEARTBEAT_SECONDS, proves the job is still wanted."""

    def __init__(self, job: ExportJob) -> None:
        self.job = job
        self.done = 0
        self.next_beat = time.monotonic() + HEARTBEAT_SECONDS
        # PostgreSQL's COPY holds the job's connection until its last row, and a beat sent on
        # it would wait for the COPY, which waits for this beat to return: the export hung for
        # good once one type took longer than a beat. The beats get a connection of their own.
        # The portable path reads in chunks, between which the job's connection is free.
        fast = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
        self.own = connections.create_connection(DEFAULT_DB_ALIAS) if fast else None

    def __call__(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() >= self.next_beat:
            self._beat()
            self.next_beat = time.monotonic() + HEARTBEAT_SECONDS

    def _beat(self) -> None:
        if self.own is None:
            _update(self.job, heartbeat=timezone.now(), done=self.done)
            return
        table = self.own.ops.quote_name(ExportJob._meta.db_table)
        with self.own.cursor() as cursor:
            cursor.execute(
                # The table name is the model's own, quoted; the values are parameters.
                f"UPDATE {table} SET heartbeat = %s, done = %s WHERE id = %s AND state = %s",  # noqa: S608
                [timezone.now(), self.done, self.job.pk, ExportJob.RUNNING],
            )
            if cursor.rowcount == 0:
                raise Stopped

    def close(self) -> None:
        if self.own is not None:
            self.own.close()


def cancel_job(job: ExportJob) -> None:
    """Delete the job and its files; a runner still writing notices and stops."""
    ExportJob.objects.filter(pk=job.pk).delete()
    shutil.rmtree(job_dir(job), ignore_errors=True)


def _expired(now: datetime) -> Q:
    """Past its expiry, unless a live runner is still writing it (its expiry then counts from
    when it finishes: a large export may outlast the retention)."""
    stale = now - timedelta(seconds=STALE_SECONDS)
    writing = Q(state=ExportJob.RUNNING, heartbeat__gte=stale)
    return Q(expires__lt=now) & ~writing


def is_expired(job: ExportJob, now: datetime | None = None) -> bool:
    return ExportJob.objects.filter(_expired(now or timezone.now()), pk=job.pk).exists()


def purge_expired(now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` expired jobs with their files; the number deleted."""
    now = now or timezone.now()
    expired = list(ExportJob.objects.filter(_expired(now)).order_by("expires")[:batch])
    for job in expired:
        cancel_job(job)
    return len(expired)


# ---------------------------------------------------------------- files


def job_dir(job: ExportJob) -> Path:
    return Path(settings.BULK_EXPORT_DIR) / job.key


def file_path(job: ExportJob, resource_type: str) -> Path:
    return job_dir(job) / f"{resource_type}{FILE_SUFFIX}"


def export_rows(job: ExportJob, resource_type: str) -> QuerySet[Resource]:
    """The live resources of one type the job exports, read from the primary."""
    rows = Resource.objects.using(DEFAULT_DB_ALIAS).filter(
        resource_type=resource_type, deleted=False, content__isnull=False
    )
    if job.since is not None:
        rows = rows.filter(last_updated__gt=job.since)
    queries = job.type_filters.get(resource_type) or []
    if queries:
        rows = rows.filter(_any_of(resource_type, queries))
    return rows


def _any_of(resource_type: str, queries: list[list[list[str]]]) -> Q:
    """Resources matching at least one `_typeFilter` query, each run by the search engine."""
    from .search.filters import filtered
    from .search.params import parse

    matches = Q(pk__in=[])
    for query in queries:
        pairs = [(name, value) for name, value in query]
        plan = parse(resource_type, pairs, strict=True, filters_only=True)
        matches |= Q(pk__in=filtered(plan).values("pk"))
    return matches


def write_file(
    rows: QuerySet[Resource],
    path: Path,
    progress: Callable[[int], None],
    *,
    fast: bool | None = None,
) -> int:
    """Write the rows' stored JSON to `path` (0600), one line each; the number of lines.

    `fast` picks PostgreSQL's COPY (the default there) or the portable keyset reads.
    """
    connection = connections[rows.db]
    fast = connection.vendor == "postgresql" if fast is None else fast
    partial = path.with_name(path.name + ".part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "wb", buffering=1 << 20) as out:
        count = (_copy_out if fast else _keyset_out)(rows, out, progress)
    os.replace(partial, path)
    return count


def _keyset_out(rows: QuerySet[Resource], out: BinaryIO, progress: Callable[[int], None]) -> int:
    last, count = 0, 0
    ordered = rows.order_by("pk").values_list("pk", "content")
    while batch := list(ordered.filter(pk__gt=last)[:CHUNK]):
        # `rows` are live resources (export_rows): no NULL content among them.
        lines = "\n".join(cast(str, content) for _, content in batch)
        out.write((lines + "\n").encode("utf-8"))
        last = batch[-1][0]
        count += len(batch)
        progress(len(batch))
    return count


def _copy_out(rows: QuerySet[Resource], out: BinaryIO, progress: Callable[[int], None]) -> int:
    """COPY's text format, row by row (libpq hands over one row per call).

    COPY doubles every backslash and writes control characters as escapes. Stored content is
    compact JSON, which has no raw control characters (JSON escapes them inside strings), so
    undoing the doubling gives back the stored text exactly.
    """
    sql, params = rows.order_by("pk").values_list("content").query.sql_with_params()
    count, pending = 0, []
    with (
        connections[rows.db].cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy,
    ):
        for row in copy:
            data = bytes(row)
            pending.append(data.replace(b"\\\\", b"\\") if b"\\" in data else data)
            if len(pending) == CHUNK:
                count += _flush(out, pending, progress)
    return count + _flush(out, pending, progress)


def _flush(out: BinaryIO, pending: list[bytes], progress: Callable[[int], None]) -> int:
    out.write(b"".join(pending))
    written = len(pending)
    pending.clear()
    progress(written)
    return written
