"""Over the API: a reference to a resource of the wrong type, and a malformed media type, are 422
OperationOutcomes naming the element, whether sent alone or in a transaction (urn:uuid)."""

from __future__ import annotations

import json

import pytest

from directory.models import Resource
from tests.factories import OrganizationFactory, PractitionerFactory

from .conftest import body_for, outcome_issue, send

pytestmark = pytest.mark.django_db

ENTRY_URN = "urn:uuid:1c0ffee0-0000-4000-8000-000000000001"


def test_a_reference_to_an_existing_resource_of_the_wrong_type_is_422(api):
    org = OrganizationFactory.create()
    body = body_for("PractitionerRole", practitioner={"reference": f"Organization/{org['id']}"})
    response = send(api, "POST", "/fhir/PractitionerRole", body)
    assert response.status_code == 422
    issue = outcome_issue(response)
    assert issue["expression"] == ["PractitionerRole.practitioner.reference"]
    assert "may refer to Practitioner only" in issue["diagnostics"]
    assert not Resource.objects.filter(resource_type="PractitionerRole").exists()


def test_the_right_type_is_created(api):
    practitioner = PractitionerFactory.create()
    reference = {"reference": f"Practitioner/{practitioner['id']}"}
    body = body_for("PractitionerRole", practitioner=reference)
    assert send(api, "POST", "/fhir/PractitionerRole", body).status_code == 201


def _transaction(target: dict) -> dict:
    role = body_for("PractitionerRole", practitioner={"reference": ENTRY_URN})
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": ENTRY_URN, "resource": target, "request": {"method": "POST", "url": "X"}},
            {"resource": role, "request": {"method": "POST", "url": "PractitionerRole"}},
        ],
    }


def test_a_transaction_reference_resolved_to_the_wrong_type_is_refused(api):
    bundle = _transaction(body_for("Organization"))
    bundle["entry"][0]["request"]["url"] = "Organization"
    response = send(api, "POST", "/fhir", bundle)
    assert response.status_code == 422
    issue = outcome_issue(response)
    assert issue["expression"] == ["Bundle.entry[1]", "PractitionerRole.practitioner.reference"]
    assert "type Organization" in issue["diagnostics"]
    assert not Resource.objects.filter(resource_type="Organization").exists()


def test_a_transaction_reference_resolved_to_the_right_type_is_written(api):
    bundle = _transaction(body_for("Practitioner"))
    bundle["entry"][0]["request"]["url"] = "Practitioner"
    response = send(api, "POST", "/fhir", bundle)
    assert response.status_code == 200, response.content
    role = json.loads(Resource.objects.get(resource_type="PractitionerRole").content)
    practitioner = Resource.objects.get(resource_type="Practitioner")
    assert role["practitioner"]["reference"] == f"Practitioner/{practitioner.logical_id}"


def test_a_malformed_media_type_is_422_naming_element_and_binding(api):
    body = body_for("Endpoint", payloadMimeType=["application/fhir+json", "text/html; charset"])
    response = send(api, "POST", "/fhir/Endpoint", body)
    assert response.status_code == 422
    issue = outcome_issue(response)
    assert issue["expression"] == ["Endpoint.payloadMimeType[1]"]
    assert "http://hl7.org/fhir/ValueSet/mimetypes" in issue["diagnostics"]
