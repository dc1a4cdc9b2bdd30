"""Custom SearchParameters over the API: stored and versioned, checked on write, searchable once
reindexed (refused before), refreshed in every worker, and written only with write scopes."""

from __future__ import annotations

import time

import fhirpathpy
import pytest
from django.core.management import call_command

from directory import customparams, registry, reindex
from directory.normalize import fold
from tests.customparams_support import ALIAS
from tests.factories import FACTORIES
from tests.sqlite_jobs import JobTurns

from .conftest import body_for, outcome_issue, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_custom_params")]
START_JOB = reindex.start_job  # the real one, with its background thread


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.RATE_LIMIT_PER_MINUTE = 0


def _orgs() -> list[dict]:
    return [
        FACTORIES["Organization"].create(name="Harbor Clinic", alias=["Harborside", "HC"]),
        FACTORIES["Organization"].create(name="Hill Clinic", alias=["Hilltop"]),
        FACTORIES["Organization"].create(name="Plain Clinic"),
    ]


def _oracle(orgs: list[dict], expression: str, prefix: str) -> set[str]:
    """Which organizations the parameter's expression, evaluated by fhirpathpy, says match."""
    return {
        org["id"]
        for org in orgs
        if any(fold(v).startswith(fold(prefix)) for v in fhirpathpy.evaluate(org, expression))
    }


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


def _reindex_now(api, resource_type: str = "Organization") -> dict:
    """`$reindex` answered 202 with a status URL; the job run here (the test's transaction is
    invisible to the background thread); the status URL then reports it done."""
    response = send(api, "POST", f"/fhir/{resource_type}/$reindex")
    assert response.status_code == 202, response.content
    location = response["Content-Location"]
    job_id = int(location.rsplit("/", 1)[1])
    reindex.run_job(job_id, sleep=lambda s: None)
    status = api.get(location.replace("http://testserver", ""))
    assert status.status_code == 200
    return {
        p["name"]: next(v for k, v in p.items() if k.startswith("value"))
        for p in status.json()["parameter"]
    }


@pytest.fixture(autouse=True)
def _no_thread(monkeypatch):
    """Jobs started by the API run synchronously in `_reindex_now` instead of a thread."""
    start = reindex.start_job
    monkeypatch.setattr(reindex, "start_job", lambda t="", **kw: start(t, background=False))


# ---------------------------------------------------------------- stored, versioned, searched


def test_custom_parameter_is_a_versioned_resource(api):
    created = send(api, "POST", "/fhir/SearchParameter", ALIAS)
    assert created.status_code == 201, created.content
    sp_id = created.json()["id"]
    retired = {**created.json(), "status": "retired"}
    assert send(api, "PUT", f"/fhir/SearchParameter/{sp_id}", retired).status_code == 200
    history = api.get(f"/fhir/SearchParameter/{sp_id}/_history").json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    for name, value in [("code", "alias"), ("base", "Organization"), ("type", "string")]:
        assert _ids(api.get("/fhir/SearchParameter", {name: value})) == {sp_id}
    assert _ids(api.get("/fhir/SearchParameter", {"status": "retired"})) == {sp_id}
    assert _ids(api.get("/fhir/SearchParameter", {"status": "active"})) == set()


def test_search_before_reindex_is_refused_then_answers_like_the_expression(api):
    orgs = _orgs()  # stored before the parameter exists: only a reindex indexes them
    assert send(api, "POST", "/fhir/SearchParameter", ALIAS).status_code == 201
    refused = api.get("/fhir/Organization", {"alias": "Harb"})
    assert refused.status_code == 409
    issue = outcome_issue(refused)
    assert issue["code"] == "incomplete" and "not indexed yet" in issue["diagnostics"]
    assert "$reindex" in issue["diagnostics"]

    status = _reindex_now(api)
    assert status["state"] == "done" and status["done"] == status["total"] == 3
    for prefix in ("Harb", "hill", "HC", "nothing"):
        found = _ids(api.get("/fhir/Organization", {"alias": prefix}))
        assert found == _oracle(orgs, ALIAS["expression"], prefix), prefix
    # A resource written after the reindex is indexed by its own write.
    late = FACTORIES["Organization"].create(name="Late", alias=["Harbor Late"])
    assert late["id"] in _ids(api.get("/fhir/Organization", {"alias": "Harbor"}))


def test_extension_parameter_through_fhirpath(api):
    """A custom parameter over an extension, evaluated by fhirpathpy: the Plan-Net use case."""
    url = "http://example.org/fhir/StructureDefinition/accepting-new"
    accepting = FACTORIES["Organization"].create(extension=[{"url": url, "valueCode": "yes"}])
    FACTORIES["Organization"].create(extension=[{"url": url, "valueCode": "no"}])
    definition = {
        **ALIAS,
        "url": "http://example.org/fhir/SearchParameter/org-accepting",
        "code": "accepting",
        "type": "token",
        "expression": f"Organization.extension.where(url='{url}').value",
    }
    assert send(api, "POST", "/fhir/SearchParameter", definition).status_code == 201
    _reindex_now(api)
    assert _ids(api.get("/fhir/Organization", {"accepting": "yes"})) == {accepting["id"]}


def test_pending_reference_parameter_is_refused_in_includes_and_chains(api):
    FACTORIES["Organization"].create(id="org-main")
    definition = {
        **ALIAS,
        "url": "http://example.org/fhir/SearchParameter/location-main-org",
        "code": "main-org",
        "base": ["Location"],
        "type": "reference",
        "target": ["Organization"],
        "expression": "Location.managingOrganization",
    }
    assert send(api, "POST", "/fhir/SearchParameter", definition).status_code == 201
    for query in (
        {"_include": "Location:main-org"},
        {"_revinclude": "Location:main-org"},
        {"main-org.name": "x"},
    ):
        path = "/fhir/Organization" if "_revinclude" in query else "/fhir/Location"
        assert api.get(path, query).status_code == 409, query
    _reindex_now(api, "Location")
    location = FACTORIES["Location"].create(
        managingOrganization={"reference": "Organization/org-main"}
    )
    found = api.get("/fhir/Location", {"main-org": "Organization/org-main"})
    assert _ids(found) == {location["id"]}
    included = api.get("/fhir/Location", {"_include": "Location:main-org"}).json()
    assert "org-main" in {e["resource"]["id"] for e in included["entry"]}


def test_draft_and_retired_parameters_do_not_join(api):
    draft = send(api, "POST", "/fhir/SearchParameter", {**ALIAS, "status": "draft"})
    assert draft.status_code == 201
    strict = {"HTTP_PREFER": "handling=strict"}
    _reindex_now(api)
    assert api.get("/fhir/Organization", {"alias": "x"}, **strict).status_code == 400
    active = {**draft.json(), "status": "active"}
    assert send(api, "PUT", f"/fhir/SearchParameter/{active['id']}", active).status_code == 200
    _reindex_now(api)
    assert api.get("/fhir/Organization", {"alias": "x"}, **strict).status_code == 200
    retired = {**active, "status": "retired"}
    assert send(api, "PUT", f"/fhir/SearchParameter/{active['id']}", retired).status_code == 200
    assert api.get("/fhir/Organization", {"alias": "x"}, **strict).status_code == 400
    assert "alias" not in registry.RESOURCES["Organization"].params


def test_deleted_parameter_leaves_the_registry(api):
    sp_id = send(api, "POST", "/fhir/SearchParameter", ALIAS).json()["id"]
    _reindex_now(api)
    assert "alias" in registry.RESOURCES["Organization"].params
    assert api.delete(f"/fhir/SearchParameter/{sp_id}").status_code == 204
    api.get("/fhir/metadata")  # any request checks the generation
    assert "alias" not in registry.RESOURCES["Organization"].params


# ---------------------------------------------------------------- checks on write


@pytest.mark.parametrize(
    "change, element",
    [
        ({"code": "1-bad code"}, "code"),
        ({"base": ["Patient"]}, "base"),
        ({"base": ["SearchParameter"]}, "base"),
        ({"type": "composite"}, "type"),
        ({"expression": "Organization.alias.where("}, "expression"),
        ({"expression": "Practitioner.name"}, "expression"),  # nothing on its base
        ({"expression": "Organization.alias" + ".first()" * 400}, "expression"),  # too long
        ({"expression": "Organization.alias.nosuchfunction()"}, "expression"),
    ],
)
def test_invalid_definitions_are_refused_with_422(api, change, element):
    response = send(api, "POST", "/fhir/SearchParameter", {**ALIAS, **change})
    assert response.status_code == 422, response.content
    assert outcome_issue(response)["expression"] == [f"SearchParameter.{element}"]
    assert api.get("/fhir/SearchParameter").json().get("total", 0) == 0


def test_clash_with_a_builtin_code_is_409(api):
    response = send(api, "POST", "/fhir/SearchParameter", {**ALIAS, "code": "name"})
    assert response.status_code == 409
    assert "built-in" in outcome_issue(response)["diagnostics"]


def test_clash_with_another_active_custom_parameter_is_409(api):
    assert send(api, "POST", "/fhir/SearchParameter", ALIAS).status_code == 201
    other = {**ALIAS, "url": "http://example.org/fhir/SearchParameter/other"}
    response = send(api, "POST", "/fhir/SearchParameter", other)
    assert response.status_code == 409
    # The same code as a draft clashes with nothing: it is not in force.
    assert (
        send(api, "POST", "/fhir/SearchParameter", {**other, "status": "draft"}).status_code == 201
    )


def test_capability_lists_a_ready_custom_parameter_only(api):
    assert send(api, "POST", "/fhir/SearchParameter", ALIAS).status_code == 201

    def listed():
        statement = api.get("/fhir/metadata").json()
        org = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Organization")
        return {p["name"]: p.get("definition") for p in org["searchParam"]}

    assert "alias" not in listed()  # listed means it works; it is refused until reindexed
    _reindex_now(api)
    assert listed()["alias"] == ALIAS["url"]


# ---------------------------------------------------------------- other workers


def test_another_workers_write_is_seen_within_the_refresh_bound(api, settings, monkeypatch):
    """A write this worker did not take (no on-commit refresh here: the test's transaction never
    commits, as for a write another process made) shows after SEARCHPARAM_REFRESH_SECONDS."""
    settings.SEARCHPARAM_REFRESH_SECONDS = 30
    clock = [1000.0]
    monkeypatch.setattr(customparams.time, "monotonic", lambda: clock[0])
    customparams.ensure_fresh(force=True)
    FACTORIES["SearchParameter"].create(**{k: v for k, v in ALIAS.items() if k != "resourceType"})
    clock[0] += 29
    customparams.ensure_fresh()
    assert "alias" not in registry.RESOURCES["Organization"].params  # within the bound: stale
    clock[0] += 2
    customparams.ensure_fresh()
    assert "alias" in registry.RESOURCES["Organization"].params
    assert not customparams.active_params()[("Organization", "alias")].ready


def test_bulk_load_indexes_custom_parameters_another_worker_stored():
    """The bulk loader (fixtures, generators) extracts with the refreshed registry too."""
    from directory import bulkload
    from directory.models import StringIndex

    FACTORIES["SearchParameter"].create(**{k: v for k, v in ALIAS.items() if k != "resourceType"})
    content = {"resourceType": "Organization", "id": "bulk-1", "name": "B", "alias": ["Bulky"]}
    bulkload.bulk_load([("Organization", content)])
    rows = StringIndex.objects.filter(param="alias", resource__logical_id="bulk-1")
    assert [r.exact for r in rows] == ["Bulky"]


def test_refresh_failure_keeps_the_registry_and_the_api_answering(api, monkeypatch):
    from django.db import OperationalError

    def unavailable():
        raise OperationalError("connection refused")

    monkeypatch.setattr(customparams, "_generation", unavailable)
    assert api.get("/fhir/metadata").status_code == 200
    assert (
        registry.RESOURCES["Organization"].params.keys()
        == customparams._builtin["Organization"].params.keys()
    )


@pytest.mark.django_db(transaction=True)
def test_a_second_process_writes_and_this_one_refreshes(settings):
    """Two real processes: a `manage.py shell` stores and reindexes a parameter; this process,
    which serves searches, picks it up at its next generation check."""
    import subprocess
    import sys

    from tests.servers import ROOT, process_env

    settings.SEARCHPARAM_REFRESH_SECONDS = 0.5
    customparams.ensure_fresh(force=True)
    assert "alias" not in registry.RESOURCES["Organization"].params
    org = FACTORIES["Organization"].create(name="Harbor", alias=["Harborside"])
    script = (
        "from directory import storage, reindex\n"
        f"storage.create('SearchParameter', {ALIAS!r})\n"
        "reindex.run_job(reindex.start_job('Organization', background=False).pk)\n"
    )
    env = process_env(SEARCHPARAM_REFRESH_SECONDS="0")
    subprocess.run(  # noqa: S603 - fixed command, test only
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    time.sleep(0.6)
    customparams.ensure_fresh()
    assert customparams.active_params()[("Organization", "alias")].ready
    from directory.search import SearchRequest, search

    result = search(SearchRequest("Organization", [("alias", "harbor")]))
    assert [e.row.logical_id for e in result.entries] == [org["id"]]


# ---------------------------------------------------------------- reindex jobs


def test_reindex_resumes_after_a_dead_runner(api, monkeypatch):
    orgs = [FACTORIES["Organization"].create(alias=[f"Alias {n}"]) for n in range(5)]
    assert send(api, "POST", "/fhir/SearchParameter", ALIAS).status_code == 201
    monkeypatch.setattr(reindex, "BATCH_SIZE", 2)
    job = reindex.start_job("Organization", background=False)
    customparams.ensure_fresh(force=True)  # as run_job does before its first batch
    assert reindex._next_batch(job.pk)  # one batch committed, then the worker "dies"
    job.refresh_from_db()
    assert (job.done, job.total, job.state) == (2, 5, "queued")
    call_command("reindexjob", "--job", str(job.pk), stdout=open("/dev/null", "w"))  # noqa: SIM115
    job.refresh_from_db()
    assert (job.done, job.total, job.state) == (5, 5, "done")
    assert _ids(api.get("/fhir/Organization", {"alias": "alias"})) == {o["id"] for o in orgs}


def test_resume_finishes_only_jobs_whose_runner_went_silent(api):
    from datetime import timedelta

    from django.utils import timezone

    FACTORIES["Organization"].create(alias=["Resumed"])
    silent = reindex.start_job("Organization", background=False)
    alive = reindex.start_job("Organization", background=False)
    long_ago = timezone.now() - timedelta(seconds=reindex.STALE_SECONDS + 1)
    reindex.ReindexJob.objects.filter(pk=silent.pk).update(heartbeat=long_ago, state="running")
    reindex.ReindexJob.objects.filter(pk=alive.pk).update(heartbeat=timezone.now())
    call_command("reindexjob", "--resume", stdout=open("/dev/null", "w"))  # noqa: SIM115
    states = dict(reindex.ReindexJob.objects.values_list("pk", "state"))
    assert states == {silent.pk: "done", alive.pk: "queued"}


def test_reindex_status_of_an_unknown_job_is_404(api):
    assert api.get("/fhir/$reindex/999999").status_code == 404


def test_system_reindex_covers_every_type(api):
    FACTORIES["Practitioner"].create()
    FACTORIES["Organization"].create()
    response = send(api, "POST", "/fhir/$reindex")
    assert response.status_code == 202
    job = reindex.ReindexJob.objects.get()
    assert job.resource_type == "" and job.total == 2


def test_reindex_of_an_unknown_type_is_404(api):
    assert send(api, "POST", "/fhir/Patient/$reindex").status_code == 404


# ---------------------------------------------------------------- authorization


@pytest.mark.django_db(transaction=True)
def test_read_only_client_cannot_write_search_parameters_or_reindex(fhir):
    body = {**ALIAS, "code": "alias-ro"}
    assert fhir("POST", "SearchParameter", scope="system/*.rs", json=body).status_code == 403
    assert fhir("POST", "Organization/$reindex", scope="system/*.rs").status_code == 403
    assert fhir("POST", "$reindex", scope="system/Organization.cruds").status_code == 403
    assert fhir("GET", "SearchParameter", scope="system/*.rs").status_code == 200
    created = fhir("POST", "SearchParameter", scope="system/*.cruds", json=body)
    assert created.status_code == 201, created.text
    started = fhir("POST", "Organization/$reindex", scope="system/*.cruds")
    assert started.status_code == 202
    status = fhir("GET", started.headers["Content-Location"].split("/fhir/", 1)[1])
    assert status.status_code == 200 and status.json()["resourceType"] == "Parameters"


@pytest.mark.django_db(transaction=True)
def test_reindex_runs_in_a_worker_thread_and_reports_progress(fhir, monkeypatch):
    monkeypatch.setattr(reindex, "start_job", START_JOB)
    turns = JobTurns()  # on SQLite the job thread and the polls take turns
    turns.wrap(monkeypatch, reindex)
    orgs = [FACTORIES["Organization"].create(alias=[f"Thread {n}"]) for n in range(3)]
    assert fhir("POST", "SearchParameter", json=ALIAS).status_code == 201
    assert fhir("GET", "Organization", params={"alias": "thread"}).status_code == 409
    with turns.between_runs():
        started = fhir("POST", "Organization/$reindex")
    assert started.status_code == 202
    status_path = started.headers["Content-Location"].split("/fhir/", 1)[1]
    deadline = time.monotonic() + 30
    while True:
        with turns.between_runs():
            status = fhir("GET", status_path).json()
        values = {p["name"]: list(p.values())[1] for p in status["parameter"]}
        if values["state"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert values["state"] == "done" and values["done"] == values["total"] == 3
    found = fhir("GET", "Organization", params={"alias": "thread"})
    assert found.status_code == 200
    assert {e["resource"]["id"] for e in found.json()["entry"]} == {o["id"] for o in orgs}


def test_body_for_search_parameter_factory_is_valid():
    assert body_for("SearchParameter")["status"] == "draft"
