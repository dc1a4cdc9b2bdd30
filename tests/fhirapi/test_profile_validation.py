"""Invariant and profile failures over the API: 422 OperationOutcome naming element and rule,
nothing stored; the Plan-Net examples of the served types store under their own ids."""

from __future__ import annotations

import copy
import json

import pytest

from directory.models import Resource
from directory.registry import RESOURCE_TYPES
from tests import plannet

from .conftest import send

pytestmark = pytest.mark.django_db

EXAMPLES = plannet.examples()
BY_ID = {(r["resourceType"], r["id"]): r for r in EXAMPLES}


def _references(value) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def storable_examples() -> list[dict]:
    """The served-type examples whose references all point at served types, in an order that
    stores each target first."""
    candidates = [
        r
        for r in EXAMPLES
        if r["resourceType"] in RESOURCE_TYPES
        and all(ref.split("/")[0] in RESOURCE_TYPES for ref in _references(r))
    ]
    ordered, stored = [], set()
    while candidates:
        ready = [r for r in candidates if set(_references(r)) <= stored]
        assert ready, "reference cycle or missing target among the examples"
        for r in ready:
            ordered.append(r)
            stored.add(f"{r['resourceType']}/{r['id']}")
        candidates = [r for r in candidates if r not in ready]
    return ordered


def test_plan_net_examples_store_under_their_ids(api, settings):
    # The examples give one NPI to several records: NPI uniqueness is off (FHIR_UNIQUE_NPI).
    settings.FHIR_UNIQUE_NPI = False
    examples = storable_examples()
    assert len(examples) == len(EXAMPLES)
    for resource in examples:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = send(api, "PUT", path, resource)
        assert response.status_code == 201, (path, response.content[:300])


def _refused(api, resource: dict, method="POST") -> list[dict]:
    path = f"/fhir/{resource['resourceType']}"
    if method == "PUT":
        path += f"/{resource['id']}"
    response = send(api, method, path, resource)
    assert response.status_code == 422, response.content[:500]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert not Resource.objects.filter(resource_type=resource["resourceType"]).exists()
    return body["issue"]


def _rules(issues: list[dict]) -> list[tuple[str, str]]:
    return [(i["details"]["text"], i["expression"][0]) for i in issues]


def test_organization_without_name_or_identifier_is_422_org_1(api):
    issues = _refused(api, {"resourceType": "Organization", "active": True})
    assert _rules(issues) == [("org-1", "Organization")]
    assert issues[0]["code"] == "invariant" and "org-1" in issues[0]["diagnostics"]


def test_home_telecom_and_home_address_are_422_org_3_and_org_2(api):
    org = {
        "resourceType": "Organization",
        "name": "Bay Clinic",
        "telecom": [{"system": "phone", "value": "555", "use": "home"}],
        "address": [{"use": "home", "city": "Hartford"}],
    }
    assert sorted(_rules(_refused(api, org))) == [
        ("org-2", "Organization.address[0]"),
        ("org-3", "Organization.telecom[0]"),
    ]


def test_plan_net_organization_missing_active_is_422(api):
    org = copy.deepcopy(BY_ID[("Organization", "Hospital")])
    del org["active"]
    issues = _refused(api, org, method="PUT")
    assert _rules(issues) == [("plannet-Organization: Organization.active", "Organization.active")]
    assert issues[0]["code"] == "required"


def test_plan_net_organization_with_wrong_fixed_value_is_422(api):
    org = copy.deepcopy(BY_ID[("Organization", "Hospital")])
    org["active"] = False
    issues = _refused(api, org)
    assert _rules(issues) == [("plannet-Organization: Organization.active", "Organization.active")]
    assert issues[0]["code"] == "value"


def test_plan_net_required_binding_violation_is_422(api):
    network = copy.deepcopy(BY_ID[("Organization", "AcmeofCTStdNet")])
    network["type"] = [
        {"coding": [{"system": network["type"][0]["coding"][0]["system"], "code": "prov"}]}
    ]
    issues = _refused(api, network)
    assert _rules(issues) == [("plannet-Network: Organization.type", "Organization.type[0]")]
    assert issues[0]["code"] == "code-invalid"
    assert "NetworkTypeVS" in issues[0]["diagnostics"]


def test_plan_net_too_many_is_422(api):
    location = copy.deepcopy(BY_ID[("Location", "StateOfCTLocation")])
    location["mode"] = "instance"
    issues = _refused(api, location)
    assert _rules(issues) == [("plannet-Location: Location.mode", "Location.mode")]
    assert issues[0]["code"] == "structure"


def test_failed_update_leaves_the_stored_version(api):
    org = copy.deepcopy(BY_ID[("Organization", "Hospital")])
    assert send(api, "PUT", "/fhir/Organization/Hospital", org).status_code == 201
    org["telecom"] = [{"system": "phone", "value": "555", "use": "home"}]
    response = send(api, "PUT", "/fhir/Organization/Hospital", org)
    assert response.status_code == 422
    stored = send(api, "GET", "/fhir/Organization/Hospital").json()
    assert stored["meta"]["versionId"] == "1"
    assert all(t.get("use") != "home" for t in stored.get("telecom", []))


def test_a_transaction_with_one_invariant_failure_writes_nothing(api):
    good = copy.deepcopy(BY_ID[("Organization", "Acme")])
    bad = {"resourceType": "Organization", "name": "Bay Clinic"}
    bad["telecom"] = [{"system": "phone", "value": "555", "use": "home"}]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": good, "request": {"method": "PUT", "url": "Organization/Acme"}},
            {"resource": bad, "request": {"method": "POST", "url": "Organization"}},
        ],
    }
    response = send(api, "POST", "/fhir", bundle)
    assert response.status_code == 422, response.content[:500]
    text = json.dumps(response.json())
    assert "org-3" in text and "Bundle.entry[1]" in text
    assert not Resource.objects.filter(resource_type="Organization").exists()
