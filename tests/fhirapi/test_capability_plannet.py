"""The CapabilityStatement against outside definitions: the Plan-Net CapabilityStatement (its
SHALL parameters, interactions and profiles), the R4B model, and the server itself (every listed
search parameter is accepted by a strict search)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhirapi import capability

pytestmark = pytest.mark.django_db

PLAN_NET_STATEMENT = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "plan-net-capability"
    / "CapabilityStatement-plan-net.json"
)
SHALL = "SHALL"
# A value of each search parameter type that any index accepts (not what it matches).
SAMPLE_VALUES = {
    "string": "x",
    "token": "true",  # also a valid boolean, for `active`
    "reference": "x",
    "date": "2020-01-01",
    "uri": "http://example.org/x",
    "number": "1",
    "quantity": "1",
    "composite": "x$y",
    "special": "42|-71|10|km",
}
# Special parameters each have their own syntax: `contains` takes a point, not a distance.
SAMPLE_BY_NAME = {"contains": "42|-71"}


def _expectation(element: dict) -> str:
    found = [
        e["valueCode"]
        for e in element.get("extension", [])
        if e["url"].endswith("capabilitystatement-expectation")
    ]
    return found[0] if found else ""


@pytest.fixture(scope="module")
def plan_net() -> dict:
    return json.loads(PLAN_NET_STATEMENT.read_text(encoding="utf-8"))


@pytest.fixture
def statement(api) -> dict:
    response = api.get("/fhir/metadata")
    assert response.status_code == 200
    return response.json()


def _ours(statement: dict, resource_type: str) -> dict:
    return next(r for r in statement["rest"][0]["resource"] if r["type"] == resource_type)


def test_statement_validates_as_r4b(statement):
    model = get_fhir_model_class("CapabilityStatement").model_validate(statement)
    assert model.instantiates == [capability.PLAN_NET_STATEMENT]


def test_instantiates_the_plan_net_statement(statement, plan_net):
    assert statement["instantiates"] == [plan_net["url"]]
    assert statement["implementationGuide"] == plan_net["implementationGuide"]


def test_every_shall_search_param_is_listed_with_its_definition(statement, plan_net):
    missing = []
    for theirs in plan_net["rest"][0]["resource"]:
        ours = {p["name"]: p for p in _ours(statement, theirs["type"])["searchParam"]}
        for param in theirs.get("searchParam", []):
            if _expectation(param) != SHALL:
                continue
            listed = ours.get(param["name"])
            if listed is None or listed.get("definition") != param["definition"]:
                missing.append((theirs["type"], param["name"], param["definition"], listed))
            elif listed["type"] != param["type"]:
                missing.append((theirs["type"], param["name"], "type", listed["type"]))
    assert missing == []


def test_every_shall_interaction_and_profile_is_listed(statement, plan_net):
    for theirs in plan_net["rest"][0]["resource"]:
        ours = _ours(statement, theirs["type"])
        codes = {i["code"] for i in ours["interaction"]}
        shall = {i["code"] for i in theirs["interaction"] if _expectation(i) == SHALL}
        assert shall <= codes, theirs["type"]
        assert set(theirs.get("supportedProfile", [])) <= set(ours["supportedProfile"])


def test_plan_net_includes_are_listed(statement, plan_net):
    for theirs in plan_net["rest"][0]["resource"]:
        ours = _ours(statement, theirs["type"])
        assert set(theirs.get("searchInclude", [])) <= set(ours.get("searchInclude", []))
        assert set(theirs.get("searchRevInclude", [])) <= set(ours.get("searchRevInclude", []))


def test_security_describes_mtls_keys_and_scopes_without_oauth(statement, settings):
    security = statement["rest"][0]["security"]
    text = security["description"]
    assert "mutual TLS" in text.replace("Mutual", "mutual")
    assert "API key" in text and "scopes" in text
    assert "extension" not in security  # no token endpoint to advertise


def test_security_names_token_endpoints_with_oauth(api, settings):
    settings.OAUTH_SERVER_URL = "https://auth.example.org"
    security = api.get("/fhir/metadata").json()["rest"][0]["security"]
    (uris,) = security["extension"]
    assert {e["url"] for e in uris["extension"]} == {"token", "register"}


def test_every_listed_search_param_is_accepted(api, statement, settings):
    settings.RATE_LIMIT_PER_MINUTE = 0
    refused = []
    for resource in statement["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            value = SAMPLE_BY_NAME.get(param["name"]) or SAMPLE_VALUES[param["type"]]
            response = api.get(
                f"/fhir/{resource['type']}",
                {param["name"]: value, "_count": "1"},
                HTTP_PREFER="handling=strict",
            )
            if response.status_code != 200:
                issue = response.json()["issue"][0]["diagnostics"]
                refused.append((resource["type"], param["name"], response.status_code, issue))
    assert refused == []


def test_every_listed_include_is_accepted(api, statement, settings):
    settings.RATE_LIMIT_PER_MINUTE = 0
    refused = []
    for resource in statement["rest"][0]["resource"]:
        pairs = [("_include", v) for v in resource.get("searchInclude", [])]
        pairs += [("_revinclude", v) for v in resource.get("searchRevInclude", [])]
        for name, value in pairs:
            response = api.get(f"/fhir/{resource['type']}", {name: value, "_count": "1"})
            if response.status_code != 200:
                refused.append((resource["type"], name, value, response.status_code))
    assert refused == []


def test_iterate_is_documented_exactly_when_the_engine_takes_it(api, statement):
    documented = "_include:iterate" in statement["rest"][0]["documentation"]
    response = api.get(
        "/fhir/PractitionerRole",
        [
            ("_include", "PractitionerRole:organization"),
            ("_include:iterate", "Organization:endpoint"),
        ],
        HTTP_PREFER="handling=strict",
    )
    assert documented == (response.status_code == 200)
