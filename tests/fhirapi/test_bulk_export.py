"""FHIR Bulk Data `$export` over real HTTP, through the whole security chain."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from directory import bulkload, export
from directory.models import Resource
from security.models import RequestAudit
from tests.factories import FACTORIES
from tests.sqlite_jobs import JobTurns

from .conftest import FHIR_JSON

pytestmark = pytest.mark.django_db(transaction=True)

ASYNC = {"Prefer": "respond-async"}
TURNS = JobTurns()  # on SQLite, jobs run between the test's requests (see tests/sqlite_jobs.py)
between_runs = TURNS.between_runs


@pytest.fixture(autouse=True)
def _sqlite_polls_between_runs(monkeypatch):
    TURNS.wrap(monkeypatch, export)


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.BULK_EXPORT_DIR = tmp_path / "exports"
    settings.BULK_EXPORT_RUN_IN_THREAD = True
    settings.BULK_EXPORT_MAX_ACTIVE_PER_CLIENT = 2


@pytest.fixture
def directory():
    """Two practitioners (one inactive), an organization and a location."""
    return {
        "active": FACTORIES["Practitioner"].create(),
        "inactive": FACTORIES["Practitioner"].create(active=False),
        "org": FACTORIES["Organization"].create(),
        "loc": FACTORIES["Location"].create(),
    }


def path_of(url: str) -> str:
    return url.split("/fhir/", 1)[1]


def kick_off(fhir, path="$export", scope="system/*.rs", **params):
    with between_runs():  # on SQLite the job starts once the kick-off has written its audit
        return fhir("GET", path, scope=scope, params=params, headers=ASYNC)


def finished(fhir, status_url: str, scope="system/*.rs") -> requests.Response:
    """Poll as a client would, honouring Retry-After, until the job leaves 202."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with between_runs():
            answer = fhir("GET", path_of(status_url), scope=scope)
        if answer.status_code != 202:
            return answer
        assert answer.headers["X-Progress"]
        time.sleep(min(0.2, float(answer.headers["Retry-After"])))
    raise AssertionError("export did not finish")


def exported(fhir, scope="system/*.rs", path="$export", **params) -> dict:
    started = kick_off(fhir, path, scope=scope, **params)
    assert started.status_code == 202, started.text
    done = finished(fhir, started.headers["Content-Location"], scope)
    assert done.status_code == 200, done.text
    return done.json()


def download(fhir, url: str, scope="system/*.rs") -> requests.Response:
    return fhir("GET", path_of(url), scope=scope, headers={"Accept": "application/fhir+ndjson"})


def lines_by_type(fhir, manifest: dict) -> dict[str, list[dict]]:
    files = {}
    for item in manifest["output"]:
        answer = download(fhir, item["url"])
        assert answer.status_code == 200
        files[item["type"]] = [json.loads(line) for line in answer.text.splitlines()]
        assert len(files[item["type"]]) == item["count"]
    return files


def test_kick_off_poll_manifest_and_files_hold_the_stored_resources(fhir, directory, live_server):
    started = kick_off(fhir)
    assert started.status_code == 202
    status_url = started.headers["Content-Location"]
    assert status_url.startswith(f"{live_server.url}/fhir/$export-status/")
    assert started.json()["resourceType"] == "OperationOutcome"

    done = finished(fhir, status_url)
    assert done.status_code == 200
    assert done.headers["Content-Type"].startswith("application/json")
    assert done.headers["Cache-Control"] == "no-store" and "Expires" in done.headers
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"] == f"{live_server.url}/fhir/$export"
    assert manifest["transactionTime"].endswith("Z") or "+" in manifest["transactionTime"]
    assert {o["type"] for o in manifest["output"]} == {"Practitioner", "Organization", "Location"}

    for item in manifest["output"]:
        answer = download(fhir, item["url"])
        assert answer.headers["Content-Type"] == "application/fhir+ndjson"
        assert answer.headers["Cache-Control"] == "no-store"
        stored = Resource.objects.filter(resource_type=item["type"], deleted=False).order_by("pk")
        # Byte for byte the stored text, one resource a line, in insertion order.
        assert answer.content == "".join(f"{r.content}\n" for r in stored).encode()
        for line in answer.text.splitlines():
            resource = json.loads(line)
            read = fhir("GET", f"{resource['resourceType']}/{resource['id']}")
            assert read.json() == resource


def test_type_and_type_level_kick_off(fhir, directory):
    manifest = exported(fhir, _type="Organization,Location")
    assert [o["type"] for o in manifest["output"]] == ["Organization", "Location"]
    manifest = exported(fhir, path="Practitioner/$export")
    assert [o["type"] for o in manifest["output"]] == ["Practitioner"]
    assert manifest["output"][0]["count"] == 2
    refused = kick_off(fhir, "Practitioner/$export", _type="Organization")
    assert refused.status_code == 400
    assert kick_off(fhir, _type="Patient").status_code == 400


def test_since_exports_only_later_changes(fhir, directory):
    since = directory["loc"]["meta"]["lastUpdated"]
    time.sleep(0.01)
    later = FACTORIES["Organization"].create(name="Later Clinic")
    files = lines_by_type(fhir, exported(fhir, _since=since))
    assert files == {"Organization": [later]}
    assert kick_off(fhir, _since="yesterday").status_code == 400


def test_type_filter_is_a_search_per_type(fhir, directory):
    files = lines_by_type(
        fhir, exported(fhir, _type="Practitioner", _typeFilter="Practitioner?active=true")
    )
    assert [r["id"] for r in files["Practitioner"]] == [directory["active"]["id"]]
    # Repeated queries, or queries separated by the URL's own commas, are alternatives.
    family = directory["inactive"]["name"][0]["family"]
    either = ["Practitioner?active=true", f"Practitioner?family={family}"]
    files = lines_by_type(fhir, exported(fhir, _type="Practitioner", _typeFilter=either))
    assert len(files["Practitioner"]) == 2
    raw = f"Practitioner%3Factive%3Dtrue,Practitioner%3Ffamily%3D{family}"
    with between_runs():
        answer = fhir(
            "GET",
            f"$export?_type=Practitioner&_typeFilter={raw}",
            scope="system/*.rs",
            headers=ASYNC,
        )
    assert finished(fhir, answer.headers["Content-Location"]).json()["output"][0]["count"] == 2
    # An encoded comma stays inside its query: `active=true,false` matches both.
    both = "Practitioner%3Factive%3Dtrue%2Cfalse"
    with between_runs():
        answer = fhir(
            "GET",
            f"$export?_type=Practitioner&_typeFilter={both}",
            scope="system/*.rs",
            headers=ASYNC,
        )
    assert answer.status_code == 202
    assert finished(fhir, answer.headers["Content-Location"]).json()["output"][0]["count"] == 2

    bad = kick_off(fhir, _type="Practitioner", _typeFilter="Practitioner?nonsense=1")
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert kick_off(fhir, _typeFilter="Practitioner?_sort=name").status_code == 400
    elsewhere = kick_off(fhir, _type="Location", _typeFilter="Practitioner?active=true")
    assert elsewhere.status_code == 400


def test_kick_off_refusals_are_outcomes(fhir, directory, settings):
    settings.BULK_EXPORT_RUN_IN_THREAD = False  # only the kick-off's answers matter here
    settings.BULK_EXPORT_MAX_ACTIVE_PER_CLIENT = 10
    no_prefer = fhir("GET", "$export", scope="system/*.rs")
    assert no_prefer.status_code == 400
    assert "respond-async" in no_prefer.json()["issue"][0]["diagnostics"]
    for params in ({"patient": "Patient/1"}, {"_elements": "id"}, {"_outputFormat": "text/csv"}):
        answer = kick_off(fhir, **params)
        assert answer.status_code == 400, params
        assert answer.headers["Content-Type"].startswith(FHIR_JSON)
    with between_runs():
        lenient = fhir(
            "GET",
            "$export",
            scope="system/*.rs",
            params={"_elements": "id", "_type": "Location"},
            headers={"Prefer": "respond-async, handling=lenient"},
        )
    assert lenient.status_code == 202
    for fmt in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        assert kick_off(fhir, _type="Location", _outputFormat=fmt).status_code == 202


def test_cancel_deletes_the_job_and_its_files(fhir, directory, settings):
    settings.BULK_EXPORT_RUN_IN_THREAD = False  # still queued when cancelled
    started = kick_off(fhir)
    status_path = path_of(started.headers["Content-Location"])
    assert fhir("GET", status_path, scope="system/*.rs").status_code == 202
    cancelled = fhir("DELETE", status_path, scope="system/*.rs")
    assert cancelled.status_code == 202
    assert fhir("GET", status_path, scope="system/*.rs").status_code == 404
    assert fhir("DELETE", status_path, scope="system/*.rs").status_code == 404
    assert not export.ExportJob.objects.exists()


def test_another_client_gets_404_for_the_job_and_its_files(
    fhir, directory, live_server, other_credentials, token_issuer
):
    manifest = exported(fhir)
    status_url = manifest["output"][0]["url"].replace("$export-file", "$export-status")
    status_url = status_url.rsplit("/", 1)[0]
    headers = {
        **other_credentials.http,
        "Authorization": f"Bearer {token_issuer.mint(scope='system/*.cruds')}",
        "Accept": FHIR_JSON,
    }
    for method, url in [
        ("GET", status_url),
        ("GET", manifest["output"][0]["url"]),
        ("DELETE", status_url),
    ]:
        answer = requests.request(method, url, headers=headers, timeout=10)
        assert answer.status_code == 404, (method, url)
        assert answer.json()["issue"][0]["diagnostics"] == "No export job at this URL"
    # Untouched for its owner.
    assert fhir("GET", path_of(status_url), scope="system/*.rs").status_code == 200
    assert download(fhir, manifest["output"][0]["url"]).status_code == 200
    # Without credentials the chain refuses before the job is looked at.
    assert requests.get(status_url, timeout=10).status_code in (401, 403)


def test_export_needs_read_on_every_type(fhir, directory):
    refused = kick_off(fhir, scope="system/Practitioner.rs", _type="Organization")
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    audit = RequestAudit.objects.latest("time")
    assert (audit.interaction, audit.outcome, audit.status) == ("export", "scope-missing", 403)
    assert audit.decision == "export needs Organization.r: deny missing Organization.r"
    # Without _type: exactly the types the token may read.
    manifest = exported(fhir, scope="system/Practitioner.rs")
    assert [o["type"] for o in manifest["output"]] == ["Practitioner"]
    # A filter is a search: `s` on its type is needed too.
    no_search = kick_off(
        fhir, scope="system/Practitioner.r", _typeFilter="Practitioner?active=true"
    )
    assert no_search.status_code == 403
    assert kick_off(fhir, scope="system/Organization.s").status_code == 403


@pytest.mark.parametrize(
    ("scope", "types"),
    [
        ("system/*.read", {"Practitioner", "Organization", "Location"}),
        ("system/*.r", {"Practitioner", "Organization", "Location"}),
        ("system/Practitioner.read system/Location.rs", {"Practitioner", "Location"}),
    ],
)
def test_smart_v1_and_v2_read_scopes_choose_the_exported_types(fhir, directory, scope, types):
    manifest = exported(fhir, scope=scope)
    assert {o["type"] for o in manifest["output"]} == types


def test_a_failed_job_answers_500_without_its_reason(fhir, directory, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full at /secret/path")

    monkeypatch.setattr(export, "write_file", broken)
    started = kick_off(fhir, _type="Location")
    failed = finished(fhir, started.headers["Content-Location"])
    assert failed.status_code == 500
    assert "secret" not in failed.text
    assert failed.json()["issue"][0]["code"] == "exception"
    job = export.ExportJob.objects.get()
    assert job.state == "failed" and "disk full" in job.error
    assert not export.job_dir(job).exists()


def test_a_file_needs_read_on_its_type_at_download(fhir, directory):
    manifest = exported(fhir)
    url = next(o["url"] for o in manifest["output"] if o["type"] == "Organization")
    assert download(fhir, url, scope="system/Practitioner.rs").status_code == 403
    assert download(fhir, url, scope="system/Organization.r").status_code == 200
    wrong_accept = fhir("GET", path_of(url), scope="system/*.rs", headers={"Accept": "text/csv"})
    assert wrong_accept.status_code == 406


def test_expired_jobs_are_purged_on_access_and_by_command(fhir, directory, settings):
    first = exported(fhir)
    job = export.ExportJob.objects.get()
    folder = export.job_dir(job)
    assert folder.is_dir() and oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct(folder.parent.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in folder.iterdir())
    export.ExportJob.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert download(fhir, first["output"][0]["url"]).status_code == 404
    assert not folder.exists() and not export.ExportJob.objects.exists()

    exported(fhir)
    kept = export.ExportJob.objects.get()
    export.ExportJob.objects.update(expires=timezone.now() - timedelta(seconds=1))
    call_command("purgeexports")
    assert not export.job_dir(kept).exists() and not export.ExportJob.objects.exists()


def test_too_many_running_exports_are_refused_with_429(fhir, directory, settings):
    settings.BULK_EXPORT_RUN_IN_THREAD = False
    assert kick_off(fhir).status_code == 202
    assert kick_off(fhir).status_code == 202
    busy = kick_off(fhir)
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "30"


def test_runexports_runs_queued_jobs_and_restarts_a_dead_runners_job(fhir, directory, settings):
    settings.BULK_EXPORT_RUN_IN_THREAD = False
    started = kick_off(fhir, _type="Practitioner")
    status_path = path_of(started.headers["Content-Location"])
    # A runner that died mid-file: running, silent for too long, a partial file left behind.
    stale = timezone.now() - timedelta(seconds=export.STALE_SECONDS + 1)
    export.ExportJob.objects.update(state=export.ExportJob.RUNNING, heartbeat=stale, done=1)
    job = export.ExportJob.objects.get()
    export.job_dir(job).mkdir(parents=True)
    export.file_path(job, "Practitioner").with_suffix(".ndjson.part").write_text("{trunc")
    assert fhir("GET", status_path, scope="system/*.rs").status_code == 202

    call_command("runexports")
    manifest = fhir("GET", status_path, scope="system/*.rs").json()
    assert manifest["output"][0]["count"] == 2
    assert sorted(p.name for p in export.job_dir(job).iterdir()) == ["Practitioner.ndjson"]
    # A live runner's job is left alone.
    kick_off(fhir, _type="Location")
    export.ExportJob.objects.filter(state="queued").update(
        state=export.ExportJob.RUNNING, heartbeat=timezone.now()
    )
    assert export.runnable_jobs() == []


def test_capability_statement_advertises_export(fhir):
    rest = fhir("GET", "metadata").json()["rest"][0]
    operations = {o["name"]: o["definition"] for o in rest["operation"]}
    assert operations["export"] == export_definition()
    practitioner = next(r for r in rest["resource"] if r["type"] == "Practitioner")
    assert {o["name"] for o in practitioner["operation"]} >= {"export"}


def export_definition() -> str:
    from fhirapi.capability import EXPORT_DEFINITION

    return EXPORT_DEFINITION


def test_a_plain_requests_consumer_keeps_a_full_copy_current(live_server, credentials, directory):
    """The README's recipe, followed only from headers and manifests: full export, then
    `_since` exports for changes and `_history?_since=` for deletions."""
    session = requests.Session()
    session.headers.update({**credentials.http, "Accept": FHIR_JSON})
    base = f"{live_server.url}/fhir"
    copy: dict[tuple[str, str], dict] = {}

    def sync(since: str | None) -> str:
        params = {"_since": since} if since else {}
        with between_runs():
            started = session.get(f"{base}/$export", params=params, headers=ASYNC, timeout=10)
        assert started.status_code == 202
        status = None
        while status is None or status.status_code == 202:
            time.sleep(float(status.headers["Retry-After"]) / 10 if status else 0)
            with between_runs():
                status = session.get(started.headers["Content-Location"], timeout=10)
        manifest = status.json()
        for item in manifest["output"]:
            lines = session.get(item["url"], timeout=10).text.splitlines()
            for resource in map(json.loads, lines):
                key = (resource["resourceType"], resource["id"])
                held = copy.get(key, {"meta": {"versionId": "0"}})
                if int(resource["meta"]["versionId"]) > int(held["meta"]["versionId"]):
                    copy[key] = resource
        if since:
            history = session.get(f"{base}/_history", params={"_since": since}, timeout=10)
            for entry in history.json().get("entry", []):
                if entry["request"]["method"] == "DELETE":
                    copy.pop(tuple(entry["request"]["url"].split("/")[:2]), None)
        return manifest["transactionTime"]

    mark = sync(None)
    from directory import storage

    storage.delete("Location", directory["loc"]["id"])
    storage.update(
        "Organization", directory["org"]["id"], {**directory["org"], "name": "Renamed Clinic"}
    )
    FACTORIES["Endpoint"].create()
    sync(mark)
    live = Resource.objects.filter(deleted=False)
    assert copy == {(r.resource_type, r.logical_id): json.loads(r.content) for r in live}
    assert copy[("Organization", directory["org"]["id"])]["name"] == "Renamed Clinic"


def test_owned_types_are_never_exported(fhir, directory):
    """Subscriptions are each client's own (their channels name its endpoints): no bulk path."""
    bulkload.bulk_load(
        [
            (
                "Subscription",
                {
                    "resourceType": "Subscription",
                    "id": "someone-elses",
                    "status": "off",
                    "reason": "theirs",
                    "criteria": "http://fhir-directory.invalid/SubscriptionTopic/practitioner-change",
                    "channel": {"type": "rest-hook", "endpoint": "https://example.org/hook"},
                },
            )
        ]
    )
    manifest = exported(fhir, scope="system/*.rs")
    assert "Subscription" not in {o["type"] for o in manifest["output"]}
    assert kick_off(fhir, _type="Subscription").status_code == 400
    assert kick_off(fhir, "Subscription/$export").status_code in (400, 404)
