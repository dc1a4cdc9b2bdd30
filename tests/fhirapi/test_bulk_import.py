"""`$import` over a real socket through the whole security chain (certificate, API key, token):
kick-off, polling, manifest, line errors, ownership, scopes, size limit, cancellation."""

from __future__ import annotations

import functools
import json
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.db import DatabaseError, connection

from directory import (
    bulkimport,
    bulkimport_jobs,
    bulkload,
    events,
    indexing,
    onestatement,
    storage,
)
from directory.models import ReferenceIndex, Resource, ResourceVersion, TokenIndex
from tests.factories import make_npi
from tests.sqlite_jobs import JobTurns

from .conftest import FHIR_JSON, body_for

pytestmark = pytest.mark.django_db(transaction=True)

NDJSON = "application/fhir+ndjson"


def ndjson(*resources) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in resources).encode()


def practitioner(pid: str, n: int, **extra) -> dict:
    return {**body_for("Practitioner"), "id": pid, "identifier": _npi(n), **extra}


def _npi(n: int) -> list[dict]:
    return [{"system": "http://hl7.org/fhir/sid/us-npi", "value": make_npi(7_000 + n)}]


TURNS = JobTurns()  # on SQLite, jobs run between the test's requests (see tests/sqlite_jobs.py)
between_runs = TURNS.between_runs


@pytest.fixture(autouse=True)
def _sqlite_requests_between_job_runs(monkeypatch):
    TURNS.wrap(monkeypatch, bulkimport_jobs)


@pytest.fixture
def importer(live_server, credentials, token_issuer):
    """Send `$import` requests as a client (the registered one by default) with given scopes."""

    def send(method, path="$import", *, scope="system/*.cruds", who=None, **kwargs):
        who = who or credentials
        headers = {
            **who.http,
            "Authorization": f"Bearer {token_issuer.mint(scope=scope)}",
            "Accept": FHIR_JSON,
            **kwargs.pop("headers", {}),
        }
        url = path if path.startswith("http") else f"{live_server.url}/fhir/{path}"
        with between_runs():
            return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    return send


def kick_off(importer, body: bytes, **kwargs) -> requests.Response:
    headers = {"Content-Type": NDJSON, "Prefer": "respond-async", **kwargs.pop("headers", {})}
    return importer("POST", data=body, headers=headers, **kwargs)


def finished(importer, location: str, **kwargs) -> requests.Response:
    """Poll the status URL until the job is no longer in progress."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = importer("GET", location, **kwargs)
        if response.status_code != 202:
            return response
        assert response.headers["X-Progress"]
        time.sleep(0.1)
    raise AssertionError("import did not finish")


def imported(importer, body: bytes) -> tuple[dict, list[dict]]:
    """Kick off, wait, and return the manifest and the error file's OperationOutcomes."""
    started = kick_off(importer, body)
    assert started.status_code == 202, started.text
    done = finished(importer, started.headers["Content-Location"])
    assert done.status_code == 200, done.text
    assert done.headers["Cache-Control"] == "no-store"
    manifest = done.json()
    outcomes = []
    for error in manifest["error"]:
        errors = importer("GET", error["url"])
        assert errors.status_code == 200
        assert errors.headers["Content-Type"] == NDJSON
        outcomes += [json.loads(line) for line in errors.text.splitlines()]
    return manifest, outcomes


def test_good_lines_are_stored_and_searchable_bad_lines_reported_by_number(importer):
    org = {**body_for("Organization"), "id": "imp-org", "name": "Imported Clinic"}
    role = {
        **body_for("PractitionerRole"),
        "id": "imp-role",
        "practitioner": {"reference": "Practitioner/imp-p1"},  # a forward reference
        "organization": {"reference": "Organization/imp-org"},
    }
    body = ndjson(
        role,
        practitioner("imp-p1", 1, name=[{"family": "Zorilla", "given": ["Ann"]}]),
        "{not json",
        practitioner("imp-p2", 2, gender="sometimes"),  # not in the required value set
        "",
        practitioner(
            "imp-p3",
            3,
            identifier=[{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567890"}],
        ),  # fails the NPI check
        org,
        {"resourceType": "Patient", "id": "imp-x"},
    )
    manifest, outcomes = imported(importer, body)

    assert {o["type"]: o["count"] for o in manifest["output"]} == {
        "Organization": 1,
        "Practitioner": 1,
        "PractitionerRole": 1,
    }
    assert manifest["error"][0]["count"] == 4
    diagnostics = [o["issue"][0]["diagnostics"] for o in outcomes]
    assert [d.split(":")[0] for d in diagnostics] == [
        "Line 3",
        "Line 4 (Practitioner/imp-p2)",
        "Line 6 (Practitioner/imp-p3)",
        "Line 8",
    ]
    assert "not valid JSON" in diagnostics[0]
    assert "NPI" in diagnostics[2]
    assert "not supported" in diagnostics[3]
    # Stored with their index rows: found by search through the API, references resolved.
    found = importer("GET", "Practitioner?family=zorilla").json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["imp-p1"]
    joined = importer("GET", "PractitionerRole?practitioner.family=zorilla").json()
    assert [e["resource"]["id"] for e in joined["entry"]] == ["imp-role"]
    assert not Resource.objects.filter(logical_id__in=["imp-p2", "imp-p3"]).exists()


def test_an_id_already_stored_gets_a_new_version(importer):
    storage.update("Practitioner", "imp-again", practitioner("imp-again", 5))
    _, outcomes = imported(
        importer, ndjson(practitioner("imp-again", 5, name=[{"family": "Second"}]))
    )
    assert outcomes == []
    read = importer("GET", "Practitioner/imp-again")
    assert read.headers["ETag"] == 'W/"2"'
    assert read.json()["name"] == [{"family": "Second"}]


def test_a_line_failing_mid_write_leaves_nothing_and_costs_only_itself(importer, monkeypatch):
    """The batch holding the line fails after its resource, version and index rows were written
    (COPY on PostgreSQL, INSERTs elsewhere): the line is rolled back whole, the others stored."""
    store_new, insert_rows, store_one = bulkload.store_new, indexing.insert_rows, onestatement.store

    def failing_store(new_rows, now):
        store_new(new_rows, now)
        if any(lid == "imp-mid" for _, lid, _, _ in new_rows):
            raise DatabaseError("index rows refused")

    def failing_insert(items, *args, **kwargs):  # the path of a write one line at a time
        if any(row.logical_id == "imp-mid" for row, _ in items):
            raise DatabaseError("index rows refused")
        return insert_rows(items, *args, **kwargs)

    def failing_one(resource_type, logical_id, *args, **kwargs):  # the same, in one statement
        stored = store_one(resource_type, logical_id, *args, **kwargs)
        if logical_id == "imp-mid":
            raise DatabaseError("index rows refused")
        return stored

    monkeypatch.setattr(bulkload, "store_new", failing_store)
    monkeypatch.setattr(indexing, "insert_rows", failing_insert)
    monkeypatch.setattr(onestatement, "store", failing_one)
    body = ndjson(
        *(practitioner(f"imp-b{i}", 10 + i) for i in range(3)), practitioner("imp-mid", 9)
    )
    manifest, outcomes = imported(importer, body)

    assert manifest["output"] == [
        {"type": "Practitioner", "count": 3, "inputUrl": manifest["request"]}
    ]
    assert [o["issue"][0]["diagnostics"].split(":")[0] for o in outcomes] == [
        "Line 4 (Practitioner/imp-mid)"
    ]
    assert not Resource.objects.filter(logical_id="imp-mid").exists()
    assert not ResourceVersion.objects.filter(logical_id="imp-mid").exists()
    for i in range(3):
        row = Resource.objects.get(logical_id=f"imp-b{i}")
        assert TokenIndex.objects.filter(resource=row, param="identifier").exists()


def test_duplicate_identifiers_in_one_batch_refuse_only_the_second(importer):
    body = ndjson(
        practitioner("imp-d1", 20), practitioner("imp-d2", 20), practitioner("imp-d3", 21)
    )
    manifest, outcomes = imported(importer, body)
    assert manifest["output"][0]["count"] == 2
    assert len(outcomes) == 1
    assert outcomes[0]["issue"][0]["code"] == "duplicate"
    assert set(Resource.objects.values_list("logical_id", flat=True)) == {"imp-d1", "imp-d3"}


def test_dangling_reference_is_stored_and_warned_with_its_line(importer):
    role = {
        **body_for("PractitionerRole"),
        "id": "imp-dangle",
        "practitioner": {"reference": "Practitioner/nowhere"},
    }
    manifest, outcomes = imported(importer, ndjson(role))
    assert manifest["output"][0]["count"] == 1
    assert outcomes[0]["issue"][0]["severity"] == "warning"
    assert outcomes[0]["issue"][0]["diagnostics"].startswith("Line 1: ")
    assert "Practitioner/nowhere" in outcomes[0]["issue"][0]["diagnostics"]


def test_another_client_gets_404_on_status_errors_and_cancel(importer, other_credentials):
    started = kick_off(importer, ndjson("{bad"))
    location = started.headers["Content-Location"]
    assert finished(importer, location).status_code == 200
    for method, url in [("GET", location), ("GET", f"{location}/errors"), ("DELETE", location)]:
        response = importer(method, url, who=other_credentials)
        assert response.status_code == 404, (method, url)
        assert response.json()["resourceType"] == "OperationOutcome"
    assert importer("GET", location).status_code == 200  # the owner still sees it


def test_cancel_removes_the_job(importer):
    started = kick_off(importer, ndjson(practitioner("imp-c", 30)))
    location = started.headers["Content-Location"]
    finished(importer, location)
    assert importer("DELETE", location).status_code == 202
    assert importer("GET", location).status_code == 404


def test_token_without_write_scope_is_refused_before_the_body_is_read(importer):
    response = kick_off(importer, ndjson(practitioner("imp-r", 40)), scope="system/*.rs")
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert not Resource.objects.exists()


def test_lines_of_a_type_the_token_cannot_write_are_line_errors(importer):
    body = ndjson(practitioner("imp-w1", 50), {**body_for("Organization"), "id": "imp-w2"})
    started = kick_off(importer, body, scope="system/Practitioner.cu")
    assert started.status_code == 202, started.text
    done = finished(importer, started.headers["Content-Location"])
    manifest = done.json()
    assert [o["type"] for o in manifest["output"]] == ["Practitioner"]
    errors = importer("GET", manifest["error"][0]["url"]).text.splitlines()
    assert json.loads(errors[0])["issue"][0]["code"] == "forbidden"
    assert not Resource.objects.filter(logical_id="imp-w2").exists()


def test_oversize_body_is_refused_with_413(importer, settings):
    settings.FHIR_IMPORT_MAX_BYTES = 100
    response = kick_off(importer, ndjson(practitioner("imp-big", 60)))
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "too-long"


def test_kick_off_needs_respond_async_and_a_known_media_type(importer):
    body = ndjson(practitioner("imp-m", 70))
    assert importer("POST", data=body, headers={"Content-Type": NDJSON}).status_code == 400
    response = kick_off(importer, body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 415


def test_input_urls_are_refused_unless_the_operator_allowed_them(importer):
    headers = {"Content-Type": FHIR_JSON, "Prefer": "respond-async"}
    response = importer("POST", json=_parameters("http://169.254.169.254/x"), headers=headers)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["input.url"]


@pytest.fixture
def file_server(tmp_path):
    """A loopback HTTP server over `tmp_path`: the operator's allowed import source."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def _parameters(url: str) -> dict:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "inputFormat", "valueCode": NDJSON},
            {
                "name": "input",
                "part": [
                    {"name": "type", "valueCode": "Practitioner"},
                    {"name": "url", "valueUri": url},
                ],
            },
        ],
    }


def test_input_url_on_the_allow_list_is_fetched_and_imported(importer, settings, file_server):
    base, folder = file_server
    (folder / "practitioners.ndjson").write_bytes(ndjson(practitioner("imp-url", 80)))
    settings.FHIR_IMPORT_ALLOWED_URLS = [f"{base}/"]
    headers = {"Content-Type": FHIR_JSON, "Prefer": "respond-async"}
    started = importer("POST", json=_parameters(f"{base}/practitioners.ndjson"), headers=headers)
    assert started.status_code == 202, started.text
    manifest = finished(importer, started.headers["Content-Location"]).json()
    assert manifest["output"][0]["count"] == 1
    assert Resource.objects.filter(logical_id="imp-url").exists()
    # A missing file: a 400 naming the status it answered.
    missing = importer("POST", json=_parameters(f"{base}/none.ndjson"), headers=headers)
    assert missing.status_code == 400
    assert "answered HTTP 404" in missing.json()["issue"][0]["diagnostics"]
    # A type the token may not write is refused before anything is fetched.
    refused = importer(
        "POST",
        json=_parameters(f"{base}/practitioners.ndjson"),
        headers=headers,
        scope="system/Organization.cu",
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    "parameters",
    [
        {"resourceType": "Parameters", "parameter": 5},
        {"resourceType": "Parameters", "parameter": [{"name": "input", "part": "x"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "inputFormat", "valueCode": "csv"}]},
        {"resourceType": "Patient"},
    ],
)
def test_a_malformed_parameters_kick_off_is_a_400(importer, parameters):
    headers = {"Content-Type": FHIR_JSON, "Prefer": "respond-async"}
    response = importer("POST", json=parameters, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_owned_types_are_not_imported_and_imports_announce_their_creates(importer, monkeypatch):
    """A Subscription line would bypass the API's endpoint checks and belong to nobody: refused.
    Every stored line is announced to the change listeners (subscriptions), like an API create."""
    heard = []
    monkeypatch.setattr(events, "_listeners", [heard.extend])
    subscription = {
        "resourceType": "Subscription",
        "id": "imp-sub",
        "status": "requested",
        "reason": "bulk",
        "criteria": "http://fhir-directory.invalid/SubscriptionTopic/practitioner-change",
        "channel": {"type": "rest-hook", "endpoint": "https://10.0.0.1/hook"},
    }
    manifest, outcomes = imported(importer, ndjson(practitioner("imp-heard", 40), subscription))

    assert manifest["output"][0] | {"inputUrl": None} == {
        "type": "Practitioner",
        "count": 1,
        "inputUrl": None,
    }
    assert len(outcomes) == 1
    diagnostics = outcomes[0]["issue"][0]["diagnostics"]
    assert diagnostics.startswith("Line 2") and "Subscription is not imported" in diagnostics
    assert not Resource.objects.filter(resource_type="Subscription").exists()
    assert [(c.resource_type, c.logical_id, c.interaction) for c in heard] == [
        ("Practitioner", "imp-heard", "create")
    ]


RACE_TRIALS = 6
RACE_ROLES = 50
# How long the hooked batch holds its transaction open after checking its references: long
# enough for an unhindered DELETE to commit inside it, short enough for a blocked one to wait.
RACE_PAUSE = 1.5


def _unreported_dangling(warned: set[str]) -> list[tuple[str, str, str]]:
    """Live referrers of deleted resources whose target no import warning names."""
    deleted = Resource.objects.filter(deleted=True)
    rows = ReferenceIndex.objects.filter(external=False, resource__deleted=False).values_list(
        "resource_type", "resource__logical_id", "target_type", "target_id"
    )
    gone = set(deleted.values_list("resource_type", "logical_id"))
    return [
        (f"{rtype}/{lid}", ttype, tid)
        for rtype, lid, ttype, tid in rows
        if (ttype, tid) in gone and f"{ttype}/{tid}" not in warned
    ]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serializes writers: no race to lose"
)
def test_a_delete_racing_an_import_batch_leaves_no_unreported_dangling_reference(
    importer, monkeypatch
):
    """An Organization is DELETEd over HTTP while an `$import` batch of roles naming it is being
    written. The delete's check for referrers cannot see the batch's uncommitted rows, so unless
    the batch holds its targets, both commit and the roles name a deleted Organization with no
    warning (every trial in the window did, before the batch locked them). Either the delete
    waits and is 409, or it commits first and the import warns of the dangling references.

    The hook holds the batch open after its reference check, the window a large batch on a busy
    server has anyway; odd trials DELETE without waiting for it, at whatever point they land."""
    checked, delete_done = threading.Event(), threading.Event()
    real = bulkimport._note_references

    def check_then_hold(stored, log):
        real(stored, log)
        checked.set()
        delete_done.wait(timeout=RACE_PAUSE)

    monkeypatch.setattr(bulkimport, "_note_references", check_then_hold)
    outcomes_seen = set()
    warned_so_far: set[str] = set()
    for trial in range(RACE_TRIALS):
        checked.clear()
        delete_done.clear()
        target = f"Organization/imp-race-{trial}"
        organization = {
            **body_for("Organization"),
            "id": f"imp-race-{trial}",
            "identifier": _npi(900 + trial),
        }
        put = importer("PUT", target, json=organization, headers={"Content-Type": FHIR_JSON})
        assert put.status_code == 201, put.text
        roles = [
            {
                **body_for("PractitionerRole"),
                "id": f"imp-race-{trial}-{n}",
                "organization": {"reference": target},
            }
            for n in range(RACE_ROLES)
        ]
        started = kick_off(importer, ndjson(*roles))
        assert started.status_code == 202, started.text
        if trial % 2 == 0:
            assert checked.wait(timeout=30), "the batch never checked its references"
        deleting = importer("DELETE", target)
        delete_done.set()
        done = finished(importer, started.headers["Content-Location"])
        assert done.status_code == 200, done.text
        manifest = done.json()
        assert manifest["output"][0]["count"] == RACE_ROLES, manifest
        outcomes = [
            json.loads(line)
            for error in manifest["error"]
            for line in importer("GET", error["url"]).text.splitlines()
        ]
        warned = {
            word.rstrip(",")
            for outcome in outcomes
            for issue in outcome["issue"]
            if issue["severity"] == "warning"
            for word in issue["diagnostics"].split()
            if word.startswith("Organization/")
        }
        assert deleting.status_code in (204, 409), deleting.text
        live = Resource.objects.get(resource_type="Organization", logical_id=f"imp-race-{trial}")
        if deleting.status_code == 409:
            assert not live.deleted and warned == set(), f"trial {trial}: {outcomes}"
            assert deleting.json()["resourceType"] == "OperationOutcome"
        else:
            assert live.deleted and warned == {target}, f"trial {trial}: {outcomes}"
        warned_so_far |= warned
        assert _unreported_dangling(warned_so_far) == [], f"trial {trial}"
        outcomes_seen.add((trial % 2, deleting.status_code))
    # Inside the window the delete must wait for the batch and find its referrers.
    assert {code for parity, code in outcomes_seen if parity == 0} == {409}, outcomes_seen
