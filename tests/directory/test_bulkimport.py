"""`manage.py importndjson` and the import engine: progress, exit status, error file, workers."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, connections
from django.utils import timezone

from directory import bulkimport, bulkimport_jobs, bulkload, storage
from directory.errors import Conflict
from directory.models import ImportJob, Resource, TokenIndex
from tests.factories import FACTORIES, make_npi

NPI = "http://hl7.org/fhir/sid/us-npi"


def practitioner(pid: str, n: int, **extra) -> str:
    content = {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": NPI, "value": make_npi(9_000 + n)}],
        "name": [{"family": f"Imported{n}"}],
        **extra,
    }
    return json.dumps(content)


def write(tmp_path, name: str, lines: list[str]):
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("importndjson", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_command_imports_reports_progress_and_exits_zero(tmp_path):
    path = write(tmp_path, "good.ndjson", [practitioner(f"cmd-{i}", i) for i in range(5)])
    out, err = run(path, "--batch-size", "2")
    assert "5 lines, 5 stored (Practitioner 5), 0 refused" in out
    # Progress on stderr: lines done/total and the rate.
    assert "5/5 lines (100%)" in err
    assert "lines/s" in err
    assert Resource.objects.filter(resource_type="Practitioner").count() == 5
    assert TokenIndex.objects.filter(param="identifier").count() == 5


@pytest.mark.django_db
def test_command_exits_non_zero_and_writes_line_errors(tmp_path):
    lines = [practitioner("cmd-a", 1), "[1, 2]", practitioner("cmd-b", 2, gender="x")]
    path = write(tmp_path, "mixed.ndjson", lines)
    with pytest.raises(CommandError) as raised:
        run(path)
    assert raised.value.returncode == 1
    error_file = tmp_path / "mixed.ndjson.errors.ndjson"
    outcomes = [json.loads(line) for line in error_file.read_text().splitlines()]
    diagnostics = [o["issue"][0]["diagnostics"] for o in outcomes]
    assert diagnostics[0].startswith("Line 2: ")
    assert diagnostics[1].startswith("Line 3 (Practitioner/cmd-b): ")
    assert list(Resource.objects.values_list("logical_id", flat=True)) == ["cmd-a"]


def test_read_lines_skips_an_overlong_line_without_holding_it(tmp_path):
    path = tmp_path / "long.ndjson"
    path.write_bytes(b"a\n" + b"x" * 5000 + b"\nb\nc")
    with open(path, "rb") as stream:
        lines = list(bulkimport.read_lines(stream, limit=100))
    assert lines == [(1, b"a\n"), (2, None), (3, b"b\n"), (4, b"c")]
    assert bulkimport.count_lines(path) == 4


@pytest.mark.django_db(transaction=True)
def test_two_worker_processes_give_the_same_result(tmp_path):
    lines = [practitioner(f"wk-{i}", i) for i in range(600)]
    lines[450] = practitioner("wk-bad", 999, gender="x")
    path = write(tmp_path, "many.ndjson", lines)
    with pytest.raises(CommandError):
        run(path, "--workers", "2", "--batch-size", "100", "--quiet")
    assert Resource.objects.count() == 599
    errors = (tmp_path / "many.ndjson.errors.ndjson").read_text().splitlines()
    assert len(errors) == 1
    assert json.loads(errors[0])["issue"][0]["diagnostics"].startswith("Line 451 ")


@pytest.mark.django_db
def test_a_job_whose_runner_stopped_is_failed_and_old_jobs_are_purged(tmp_path, settings):
    settings.FHIR_IMPORT_SPOOL_DIR = str(tmp_path)
    path, size = bulkimport_jobs.spool([practitioner("job-1", 1).encode()])
    job = bulkimport_jobs.create_job(path, size, owner="7", writable=None, request_url="x")
    assert bulkimport_jobs.check_alive(job).state == ImportJob.QUEUED
    ImportJob.objects.filter(pk=job.pk).update(
        created=timezone.now() - timedelta(seconds=bulkimport_jobs.STALE_SECONDS + 1)
    )
    job.refresh_from_db()
    assert bulkimport_jobs.check_alive(job).state == ImportJob.FAILED
    assert not path.exists()  # the spool file goes with the job's end
    assert bulkimport_jobs.purge() == 0  # finished just now: kept
    later = timezone.now() + timedelta(seconds=settings.FHIR_IMPORT_KEEP_SECONDS + 1)
    assert bulkimport_jobs.purge(later) == 1


def test_spool_refuses_past_its_limit_and_leaves_no_file(tmp_path, settings):
    settings.FHIR_IMPORT_SPOOL_DIR = str(tmp_path)
    with pytest.raises(bulkimport_jobs.SpoolTooLarge):
        bulkimport_jobs.spool([b"x" * 60, b"y" * 60], limit=100)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_bad_lines_in_many_batches_cost_only_themselves(tmp_path):
    """Duplicate NPIs spread over several batches: each failing batch is halved down to its bad
    line, which alone is refused, naming the line; every other line is stored."""
    lines = [practitioner(f"dup-{i}", i) for i in range(40)]
    duplicates = {7: 1, 18: 2, 19: 3, 33: 30}  # line index -> the earlier practitioner it repeats
    for index, earlier in duplicates.items():
        lines[index] = practitioner(f"dup-{index}", earlier)
    out = io.StringIO()
    summary = bulkimport.import_file(
        write(tmp_path, "dups.ndjson", lines), bulkimport.ErrorFile(out), batch_size=10
    )
    assert summary.errors == 4
    assert summary.counts == {"Practitioner": 36}
    refused = [json.loads(line)["issue"][0] for line in out.getvalue().splitlines()]
    assert [issue["code"] for issue in refused] == ["duplicate"] * 4
    assert [issue["diagnostics"].split(" (")[0] for issue in refused] == [
        f"Line {index + 1}" for index in sorted(duplicates)
    ]
    stored = set(Resource.objects.values_list("logical_id", flat=True))
    assert stored == {f"dup-{i}" for i in range(40)} - {f"dup-{i}" for i in duplicates}


@pytest.mark.django_db
def test_a_cancelled_job_stops_after_its_current_batch(tmp_path, settings):
    settings.FHIR_IMPORT_SPOOL_DIR = str(tmp_path)
    settings.FHIR_IMPORT_BATCH_SIZE = 2
    body = "".join(practitioner(f"cx-{i}", 100 + i) + "\n" for i in range(6)).encode()
    path, size = bulkimport_jobs.spool([body])
    job = bulkimport_jobs.create_job(path, size, owner="7", writable=None, request_url="x")
    ImportJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = bulkimport_jobs.run_job(job.pk)
    assert job.state == ImportJob.CANCELLED
    # The first batch was committed before the flag was seen; nothing after it.
    assert Resource.objects.count() == 2
    assert not path.exists()


class _DeadlockCause(Exception):
    sqlstate = "40P01"  # what psycopg carries for PostgreSQL's deadlock_detected


def _deadlock() -> OperationalError:
    exc = OperationalError("deadlock detected")
    exc.__cause__ = _DeadlockCause()
    return exc


def _deadlocked(real, times: int):
    """`real`, after raising a deadlock the first `times` calls (the batch's victim turns)."""
    calls = {"n": 0}

    def call(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= times:
            raise _deadlock()
        return real(*args, **kwargs)

    return call


def _import(tmp_path, lines: list[str]) -> tuple[bulkimport.Summary, list[dict]]:
    errors = io.StringIO()
    summary = bulkimport.import_file(
        write(tmp_path, "in.ndjson", lines), bulkimport.ErrorFile(errors), batch_size=10
    )
    return summary, [json.loads(line) for line in errors.getvalue().splitlines()]


@pytest.mark.django_db(transaction=True)
def test_a_batch_aborted_by_a_deadlock_runs_again_and_counts_once(tmp_path, monkeypatch):
    """The database aborts the batch after its writes (its target locks met a delete's); the
    retry stores every line once, and the totals and error file (a duplicate NPI refused inside
    the batch) do not count the lost tries."""
    real = bulkimport._note_references
    monkeypatch.setattr(bulkimport, "_note_references", _deadlocked(real, 2))
    lines = [practitioner(f"dl-{i}", i) for i in range(3)] + [practitioner("dl-dup", 1)]
    summary, outcomes = _import(tmp_path, lines)
    assert (summary.stored, summary.errors, summary.warnings) == (3, 1, 0)
    assert [o["issue"][0]["diagnostics"].split(":")[0] for o in outcomes] == [
        "Line 4 (Practitioner/dl-dup)"
    ]
    stored = Resource.objects.filter(resource_type="Practitioner")
    assert sorted(stored.values_list("logical_id", "version_id")) == [
        ("dl-0", 1),
        ("dl-1", 1),
        ("dl-2", 1),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_batch_deadlocked_every_time_refuses_its_lines_and_the_import_goes_on(
    tmp_path, monkeypatch
):
    real = bulkimport._note_references
    monkeypatch.setattr(bulkimport, "_note_references", _deadlocked(real, bulkload.BATCH_ATTEMPTS))
    lines = [practitioner(f"dl-{i}", i) for i in range(12)]  # two batches: the second one stores
    summary, outcomes = _import(tmp_path, lines)
    assert (summary.stored, summary.errors) == (2, 10)
    assert {o["issue"][0]["code"] for o in outcomes} == {"transient"}
    assert outcomes[0]["issue"][0]["diagnostics"].startswith(
        "Line 1 (Practitioner/dl-0): Not stored"
    )
    assert set(Resource.objects.values_list("logical_id", flat=True)) == {"dl-10", "dl-11"}


@pytest.mark.django_db(transaction=True)
def test_another_database_error_of_a_batch_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def broken(stored, log):
        calls.append(1)
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(bulkimport, "_note_references", broken)
    with pytest.raises(OperationalError):
        _import(tmp_path, [practitioner("dl-0", 0)])
    assert calls == [1]
    assert not Resource.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_bulk_load_runs_a_deadlocked_batch_again(monkeypatch):
    real = bulkload._check_batch_references
    monkeypatch.setattr(bulkload, "_check_batch_references", _deadlocked(real, 1))
    items = [("Practitioner", json.loads(practitioner(f"bl-{i}", 20 + i))) for i in range(3)]
    assert bulkload.bulk_load(items, batch_size=10) == 3
    assert Resource.objects.filter(resource_type="Practitioner").count() == 3


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serializes writers: no race to lose"
)
@pytest.mark.django_db(transaction=True)
def test_bulk_load_holds_its_targets_against_a_concurrent_delete(monkeypatch):
    """A delete of an Organization while a `bulk_load` batch of roles naming it is written (the
    batch held open after its COPY) waits for the batch, then finds the roles: 409. Without the
    lock it committed inside the batch and left the roles naming a deleted Organization."""
    organization = FACTORIES["Organization"].build(id="bl-org")
    bulkload.bulk_load([("Organization", organization)])
    written, deleted = threading.Event(), threading.Event()
    store_new = bulkload.store_new

    def store_then_hold(*args, **kwargs):
        result = store_new(*args, **kwargs)
        written.set()
        deleted.wait(timeout=1.5)
        return result

    monkeypatch.setattr(bulkload, "store_new", store_then_hold)
    role = FACTORIES["PractitionerRole"].build
    roles = [
        (
            "PractitionerRole",
            {**role(id=f"bl-role-{i}"), "organization": {"reference": "Organization/bl-org"}},
        )
        for i in range(5)
    ]

    def load() -> None:
        try:
            bulkload.bulk_load(roles)
        finally:
            connections.close_all()

    loader = threading.Thread(target=load)
    loader.start()
    assert written.wait(timeout=30)
    with pytest.raises(Conflict):
        storage.delete("Organization", "bl-org")
    deleted.set()
    loader.join(timeout=30)
    assert not Resource.objects.get(logical_id="bl-org").deleted
    assert Resource.objects.filter(resource_type="PractitionerRole", deleted=False).count() == 5
