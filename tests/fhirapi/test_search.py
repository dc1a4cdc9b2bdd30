"""Search over HTTP: GET and POST _search, Bundle shape, links, Prefer handling."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class

import directory.search
import fhirapi.handlers
from directory.errors import InvalidRequest
from tests.factories import (
    NPI_SYSTEM,
    OrganizationFactory,
    PractitionerFactory,
    PractitionerRoleFactory,
)

from .conftest import TYPES, outcome_issue

pytestmark = pytest.mark.django_db

BASE = "http://testserver/fhir"
FORM = "application/x-www-form-urlencoded"


def links(bundle: dict) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@dataclass
class Recorder:
    """Stands in for the search engine to observe exactly what the HTTP layer hands it."""

    requests: list = field(default_factory=list)
    result: object = None

    def __call__(self, request):
        self.requests.append(request)
        return self.result or directory.search.SearchResult(
            entries=[],
            total=0,
            self_params=request.params,
            next_params=None,
            previous_params=None,
            first_params=request.params,
            ignored=[],
            summary_count=False,
        )


@pytest.fixture
def recorder(monkeypatch):
    fake = Recorder()
    monkeypatch.setattr(fhirapi.handlers, "search", fake)
    return fake


# ---------------------------------------------------------------- wiring


def test_get_search_passes_params_in_order_without_format(api, recorder):
    api.get("/fhir/Practitioner?family=Smith&_include=a&_format=json&_include=b&given=")
    (request,) = recorder.requests
    assert request.resource_type == "Practitioner"
    assert request.params == [
        ("family", "Smith"),
        ("_include", "a"),
        ("_include", "b"),
        ("given", ""),
    ]
    assert request.strict is True  # strict unless the client prefers lenient handling


@pytest.mark.parametrize(
    ("prefer", "strict"),
    [
        ("handling=strict", True),
        ("handling=lenient", False),
        ("return=minimal", True),
        ("HANDLING=Strict", True),
        ("respond-async, handling=strict", True),
    ],
)
def test_prefer_handling_sets_strict(api, recorder, prefer, strict):
    api.get("/fhir/Organization?name=x", HTTP_PREFER=prefer)
    assert recorder.requests[0].strict is strict


def test_post_search_merges_url_and_form_params(api, recorder):
    response = api.post(
        "/fhir/Location/_search?name=a", "address-city=Boston&_count=5", content_type=FORM
    )
    assert response.status_code == 200
    assert recorder.requests[0].params == [
        ("name", "a"),
        ("address-city", "Boston"),
        ("_count", "5"),
    ]


def test_post_search_with_empty_body_uses_url_params(api, recorder):
    response = api.post("/fhir/Location/_search?name=a")
    assert response.status_code == 200
    assert recorder.requests[0].params == [("name", "a")]


@pytest.mark.parametrize(
    "content_type", ["application/fhir+json", "text/plain", "multipart/form-data"]
)
def test_post_search_with_other_body_is_415(api, recorder, content_type):
    response = api.post("/fhir/Location/_search", "name=a", content_type=content_type)
    assert response.status_code == 415
    outcome_issue(response)
    assert recorder.requests == []


def test_post_search_body_over_limit_is_413(api, recorder, settings):
    settings.FHIR_MAX_BODY_BYTES = 50
    response = api.post("/fhir/Location/_search", "name=" + "a" * 100, content_type=FORM)
    assert response.status_code == 413


def test_search_on_unknown_type_is_404(api, recorder):
    assert api.get("/fhir/Patient?name=x").status_code == 404
    assert recorder.requests == []


def test_bundle_links_are_built_from_result_params(api, recorder):
    recorder.result = directory.search.SearchResult(
        entries=[],
        total=42,
        self_params=[("name", "a b"), ("_count", "10")],
        next_params=[("name", "a b"), ("_cursor", "n1")],
        previous_params=[("name", "a b"), ("_cursor", "p1")],
        first_params=[("name", "a b")],
        ignored=[],
        summary_count=False,
    )
    bundle = api.get("/fhir/Organization?name=a+b").json()
    assert bundle["type"] == "searchset" and bundle["total"] == 42
    found = links(bundle)
    assert found["self"] == f"{BASE}/Organization?name=a+b&_count=10"
    assert found["next"] == f"{BASE}/Organization?name=a+b&_cursor=n1"
    assert found["previous"] == f"{BASE}/Organization?name=a+b&_cursor=p1"
    assert found["first"] == f"{BASE}/Organization?name=a+b"


def test_engine_errors_become_outcomes(api, monkeypatch):
    def refuse(request):
        raise InvalidRequest("bad parameter", expression=["foo"])

    monkeypatch.setattr(fhirapi.handlers, "search", refuse)
    response = api.get("/fhir/Organization?foo=1")
    assert response.status_code == 400
    assert outcome_issue(response)["expression"] == ["foo"]


# ---------------------------------------------------------------- with the real engine


@pytest.mark.parametrize("resource_type", TYPES)
def test_search_every_type_returns_matches(api, resource_type):
    from .conftest import FACTORIES

    stored = FACTORIES[resource_type].create()
    FACTORIES[resource_type].create()
    response = api.get(f"/fhir/{resource_type}", {"_id": stored["id"]})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    bundle = response.json()
    assert bundle["total"] == 1
    (entry,) = bundle["entry"]
    assert entry["fullUrl"] == f"{BASE}/{resource_type}/{stored['id']}"
    assert entry["search"]["mode"] == "match"
    assert entry["resource"]["id"] == stored["id"]
    get_fhir_model_class("Bundle").model_validate(bundle)


def test_get_and_post_search_agree(api):
    OrganizationFactory.create(name="Harbor Clinic")
    OrganizationFactory.create(name="Hillside Health")
    by_get = api.get("/fhir/Organization", {"name": "harbor"}).json()
    by_post = api.post("/fhir/Organization/_search", "name=harbor", content_type=FORM).json()
    assert by_get["total"] == by_post["total"] == 1
    assert by_get["entry"][0]["fullUrl"] == by_post["entry"][0]["fullUrl"]


def test_identifier_search(api):
    org = OrganizationFactory.create()
    OrganizationFactory.create()
    value = org["identifier"][0]["value"]
    bundle = api.get("/fhir/Organization", {"identifier": f"{NPI_SYSTEM}|{value}"}).json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [org["id"]]


def test_include_entries_have_include_mode(api):
    practitioner = PractitionerFactory.create()
    PractitionerRoleFactory.create(practitioner={"reference": f"Practitioner/{practitioner['id']}"})
    bundle = api.get("/fhir/PractitionerRole", {"_include": "PractitionerRole:practitioner"}).json()
    modes = {e["resource"]["resourceType"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"PractitionerRole": "match", "Practitioner": "include"}


def test_unknown_param_lenient_adds_warning_outcome_entry(api):
    OrganizationFactory.create()
    bundle = api.get(
        "/fhir/Organization", {"colour": "blue"}, HTTP_PREFER="handling=lenient"
    ).json()
    assert bundle["total"] == 1
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    (entry,) = outcomes
    issue = entry["resource"]["issue"][0]
    assert entry["resource"]["resourceType"] == "OperationOutcome"
    assert issue["severity"] == "warning" and "colour" in issue["diagnostics"]
    get_fhir_model_class("Bundle").model_validate(bundle)


@pytest.mark.parametrize("prefer", [{}, {"HTTP_PREFER": "handling=strict"}])
def test_unknown_param_is_400_by_default_and_when_strict(api, prefer):
    response = api.get("/fhir/Organization", {"colour": "blue"}, **prefer)
    assert response.status_code == 400
    issue = outcome_issue(response)
    assert "colour" in issue["diagnostics"] and issue["expression"] == ["colour"]


@pytest.mark.parametrize("name", ["name:exat", "name:fuzzy", "_count:x", "_include:recurse"])
def test_unknown_modifier_is_400_by_default(api, name):
    OrganizationFactory.create(name="Alpha")
    response = api.get(
        "/fhir/Organization", {name: "Organization:partof" if "include" in name else "al"}
    )
    assert response.status_code == 400
    issue = outcome_issue(response)
    assert name.partition(":")[2] in issue["diagnostics"] and issue["expression"] == [name]


def test_unknown_modifier_lenient_is_ignored_and_reported(api):
    OrganizationFactory.create(name="Alpha")
    OrganizationFactory.create(name="Beta")
    response = api.get("/fhir/Organization", {"name:exat": "Alpha"}, HTTP_PREFER="handling=lenient")
    bundle = response.json()
    assert bundle["total"] == 2
    outcome = next(e for e in bundle["entry"] if e["search"]["mode"] == "outcome")["resource"]
    assert "exat" in outcome["issue"][0]["diagnostics"]


def test_format_param_is_not_reported_as_unknown(api):
    response = api.get("/fhir/Organization", {"_format": "json"}, HTTP_PREFER="handling=strict")
    assert response.status_code == 200


def test_huge_count_is_capped_and_paging_links_work(api, settings):
    settings.FHIR_MAX_COUNT = 2
    for _ in range(5):
        OrganizationFactory.create()
    bundle = api.get("/fhir/Organization", {"_count": "1000000", "_total": "accurate"}).json()
    assert len(bundle["entry"]) == 2 and bundle["total"] == 5
    assert ("_count", "2") in query_of(links(bundle)["next"])
    seen = [e["fullUrl"] for e in bundle["entry"]]
    while "next" in links(bundle):
        bundle = api.get(relative(links(bundle)["next"])).json()
        seen += [e["fullUrl"] for e in bundle["entry"]]
    assert len(seen) == len(set(seen)) == 5


def test_bad_search_value_is_400(api):
    response = api.get("/fhir/Organization", {"_count": "lots"})
    assert response.status_code == 400
    outcome_issue(response)
