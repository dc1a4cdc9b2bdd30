"""The export writer: the stored text, byte for byte, on both paths and both databases."""

from __future__ import annotations

import pytest
from django.db import connection

from directory import export
from directory.models import Resource
from tests.factories import FACTORIES

# Escapes JSON must keep and COPY's text format would otherwise mangle.
AWKWARD = [
    'back\\slash "quoted"',
    "line\nbreak\ttab\r",
    "Müller 東京 \u2028",
    "\\\\n not a newline",
]


def _write(tmp_path, job, fast: bool) -> bytes:
    target = tmp_path / f"Organization-{fast}.ndjson"
    counted = []
    rows = export.export_rows(job, "Organization")
    assert export.write_file(rows, target, counted.append, fast=fast) == rows.count()
    assert sum(counted) == rows.count()
    return target.read_bytes()


@pytest.mark.django_db
def test_files_hold_the_stored_text_on_every_path(tmp_path):
    for name in AWKWARD:
        FACTORIES["Organization"].create(name=name, alias=[name])
    FACTORIES["Practitioner"].create()
    job = export.ExportJob(types=["Organization"], type_filters={})
    stored = Resource.objects.filter(resource_type="Organization").order_by("pk")
    expected = "".join(f"{r.content}\n" for r in stored).encode()
    assert _write(tmp_path, job, fast=False) == expected
    if connection.vendor == "postgresql":
        assert _write(tmp_path, job, fast=True) == expected


@pytest.mark.django_db
def test_keyset_reads_cross_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 2)
    for n in range(5):
        FACTORIES["Organization"].create(name=f"Chunk {n}")
    job = export.ExportJob(types=["Organization"], type_filters={})
    paths = [False, True] if connection.vendor == "postgresql" else [False]
    for fast in paths:
        assert _write(tmp_path, job, fast=fast).count(b"\n") == 5


@pytest.mark.django_db
def test_deleted_resources_are_not_exported(tmp_path):
    from directory import storage

    kept, gone = (FACTORIES["Organization"].create() for _ in range(2))
    storage.delete("Organization", gone["id"])
    job = export.ExportJob(types=["Organization"], type_filters={})
    assert gone["id"] not in _write(tmp_path, job, fast=False).decode()
    assert kept["id"] in _write(tmp_path, job, fast=False).decode()


@pytest.mark.django_db
def test_purge_spares_a_job_its_runner_is_still_writing(tmp_path, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.BULK_EXPORT_DIR = tmp_path
    now = timezone.now()
    request = export.ExportRequest(owner="client:1", request_url="x", types=["Organization"])
    writing, dead, done = (export.start_job(request, background=False) for _ in range(3))
    past = now - timedelta(seconds=1)
    stale = now - timedelta(seconds=export.STALE_SECONDS + 1)
    export.ExportJob.objects.filter(pk=writing.pk).update(
        state="running", heartbeat=now, expires=past
    )
    export.ExportJob.objects.filter(pk=dead.pk).update(
        state="running", heartbeat=stale, expires=past
    )
    export.ExportJob.objects.filter(pk=done.pk).update(state="done", expires=past)
    assert export.purge_expired(batch=10) == 2
    assert list(export.ExportJob.objects.values_list("pk", flat=True)) == [writing.pk]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's path")
@pytest.mark.django_db(transaction=True)
def test_heartbeats_during_a_copy_do_not_hang_the_job(tmp_path, settings, monkeypatch):
    """A beat on the COPY's own connection waited for the COPY, which waited for the beat."""
    import threading

    from django.db import connections

    settings.BULK_EXPORT_DIR = tmp_path
    monkeypatch.setattr(export, "HEARTBEAT_SECONDS", 0)  # a beat after every flushed row
    monkeypatch.setattr(export, "CHUNK", 1)
    for n in range(3):
        FACTORIES["Organization"].create(name=f"Beat {n}")
    request = export.ExportRequest(owner="client:1", request_url="x", types=["Organization"])
    job = export.start_job(request, background=False)

    def run() -> None:
        try:
            export.run_job(job.pk)
        finally:
            connections.close_all()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the export hung in its own heartbeat"
    finished = export.ExportJob.objects.get(pk=job.pk)
    assert finished.state == export.ExportJob.DONE
    assert finished.output == [{"type": "Organization", "count": 3}]
