"""NDH over the API: the IG's own examples of the served types store under their ids; a copy
that breaks an NDH rule is a 422 OperationOutcome naming profile and element, nothing stored; the
CapabilityStatement lists each type's NDH profiles as the IG's own server statement does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from directory.models import Resource
from directory.registry import RESOURCE_TYPES
from tests import ndh

from .conftest import send

pytestmark = pytest.mark.django_db

PLAN_LINK = "base-ext-insuranceplan-reference"
NDH_STATEMENT = Path(ndh.DATA).parent / "capability" / "CapabilityStatement-ndh-server.json"


def _references(value) -> list[str]:
    """The relative references in `value` (the server checks their targets exist)."""
    if isinstance(value, dict):
        reference = value.get("reference")
        found = [reference] if isinstance(reference, str) and "://" not in reference else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def _targets_first(examples: list[dict]) -> list[dict]:
    ordered, stored, pending = [], set(), list(examples)
    while pending:
        ready = [r for r in pending if set(_references(r)) <= stored]
        assert ready, "reference cycle or missing target among the examples"
        ordered += ready
        stored |= {f"{r['resourceType']}/{r['id']}" for r in ready}
        pending = [r for r in pending if r not in ready]
    return ordered


def _without_plan_links(org: dict) -> dict:
    return {
        **org,
        "extension": [e for e in org["extension"] if not e["url"].endswith(PLAN_LINK)],
    }


def test_ndh_examples_store_under_their_ids(api, settings):
    # Like Plan-Net's, the examples give one NPI to several records: NPI uniqueness is off.
    settings.FHIR_UNIQUE_NPI = False
    # One reference cycle: Organization/Acme names its plan AcmeQHPBronze (an extension), whose
    # owner and network name Acme. A client stores Acme without that link, then completes it.
    examples = ndh.examples()
    acme = ndh.example("Organization", "Acme")
    first = [_without_plan_links(r) if r == acme else r for r in examples]
    ordered = _targets_first(first)
    assert len(ordered) == 76
    for resource in [*ordered, acme]:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = send(api, "PUT", path, resource)
        assert response.status_code in (200, 201), (path, response.content[:300])
        assert response.json()["meta"]["profile"] == resource["meta"]["profile"]
    assert Resource.objects.count() == 76
    stored_acme = send(api, "GET", "/fhir/Organization/Acme").json()
    assert stored_acme["extension"] == acme["extension"]


def test_an_ndh_example_without_last_updated_is_created_and_stamped(api):
    # Every NDH profile requires meta.lastUpdated: the stored resource has it, so a client need
    # not send it.
    org = ndh.example("Organization", "Acme")
    del org["meta"]["lastUpdated"]
    response = send(api, "POST", "/fhir/Organization", org)
    assert response.status_code == 201, response.content[:300]
    assert response.json()["meta"]["lastUpdated"]


def _refused(api, resource: dict) -> list[tuple[str, str]]:
    response = send(api, "POST", f"/fhir/{resource['resourceType']}", resource)
    assert response.status_code == 422, response.content[:500]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert not Resource.objects.filter(resource_type=resource["resourceType"]).exists()
    return [(i["details"]["text"], i["expression"][0]) for i in body["issue"]]


def test_missing_required_element_is_422(api):
    location = ndh.example("Location", "HospLoc1")
    del location["name"]
    assert _refused(api, location) == [("ndh-Location: Location.name", "Location.name")]


def test_broken_fixed_value_is_422(api):
    endpoint = ndh.example("Endpoint", "AcmeEHRServerEndpoint")
    endpoint["status"] = "off"
    assert _refused(api, endpoint) == [("ndh-Endpoint: Endpoint.status", "Endpoint.status")]


def test_code_outside_required_binding_is_422(api):
    network = ndh.example("Organization", "AcmeofCTStdNet")
    network["type"][0]["coding"][0]["code"] = "prov"
    assert _refused(api, network) == [("ndh-Network: Organization.type", "Organization.type[0]")]


def test_invalid_extension_is_422(api):
    practitioner = ndh.example("Practitioner", "HansSolo")
    status = practitioner["identifier"][0]["extension"][0]
    assert status["url"].endswith("base-ext-identifier-status")
    status["valueCode"] = "lapsed"
    assert _refused(api, practitioner) == [
        (
            "ndh-Practitioner: Extension.value[x]",
            "Practitioner.identifier[0].extension[0].value.ofType(code)",
        )
    ]


@pytest.fixture
def statement(api) -> dict:
    return send(api, "GET", "/fhir/metadata").json()


def test_capability_lists_the_ndh_profiles_of_each_served_type(statement):
    theirs = json.loads(NDH_STATEMENT.read_text())
    ours = {r["type"]: r for r in statement["rest"][0]["resource"]}
    checked = 0
    for resource in theirs["rest"][0]["resource"]:
        if resource["type"] not in RESOURCE_TYPES:
            continue  # VerificationResult: not served, so its profile is not enforced
        assert set(resource["supportedProfile"]) <= set(ours[resource["type"]]["supportedProfile"])
        checked += 1
    assert checked == 9
