"""NPI check digits and unique identifiers, over real HTTP through the whole security chain."""

from __future__ import annotations

import threading

import pytest
import requests
from django.db import connection

from directory.models import Resource, UniqueIdentifierSystem
from tests.factories import FACTORIES, NPI_SYSTEM, make_npi

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/fhir+json"
NPI_A, NPI_B = make_npi(81), make_npi(82)
LICENSE = "https://example.org/state-license"


def practitioner(npi: str, family: str = "Osei", **extra) -> dict:
    return {
        "resourceType": "Practitioner",
        "name": [{"family": family, "given": ["Ama"]}],
        "identifier": [{"system": NPI_SYSTEM, "value": npi}],
        **extra,
    }


def organization(npi: str, **extra) -> dict:
    return {
        "resourceType": "Organization",
        "name": "Bay Clinic",
        "identifier": [{"system": NPI_SYSTEM, "value": npi}],
        **extra,
    }


def issue(response: requests.Response) -> dict:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


@pytest.mark.parametrize("value", ["1234567890", "123456789", "12345678901", "12345678a3"])
def test_an_npi_failing_its_check_is_refused_naming_the_element(fhir, value):
    response = fhir("POST", "Practitioner", json=practitioner(value))
    assert response.status_code == 422, response.text
    assert issue(response)["expression"] == ["Practitioner.identifier[0].value"]
    assert not Resource.objects.exists()


def test_a_valid_npi_is_accepted_and_a_bad_one_refused_on_update(fhir):
    created = fhir("POST", "Practitioner", json=practitioner("1234567893"))
    assert created.status_code == 201, created.text
    body = {
        **created.json(),
        "identifier": [{"system": "x", "value": "1"}, *practitioner("1")["identifier"]],
    }
    body["identifier"][1]["value"] = "1234567890"
    response = fhir("PUT", f"Practitioner/{body['id']}", json=body)
    assert response.status_code == 422
    assert issue(response)["expression"] == ["Practitioner.identifier[1].value"]


def test_an_npi_held_by_another_practitioner_or_organization_is_a_conflict(fhir):
    first = fhir("POST", "Practitioner", json=practitioner(NPI_A))
    assert first.status_code == 201
    second = fhir("POST", "Practitioner", json=practitioner(NPI_A, family="Mensah"))
    assert second.status_code == 409, second.text
    assert issue(second)["expression"] == ["Practitioner.identifier[0]"]
    assert fhir("POST", "Organization", json=organization(NPI_A)).status_code == 409
    # An update of the holder itself keeps its NPI.
    same = {**first.json(), "active": False}
    assert fhir("PUT", f"Practitioner/{same['id']}", json=same).status_code == 200
    # Once the holder is deleted, the NPI is free again.
    assert fhir("DELETE", f"Practitioner/{same['id']}").status_code in (200, 204)
    assert fhir("POST", "Organization", json=organization(NPI_A)).status_code == 201


def test_an_update_taking_another_resources_npi_is_a_conflict(fhir):
    FACTORIES["Practitioner"].create(id="p1", identifier=[{"system": NPI_SYSTEM, "value": NPI_A}])
    FACTORIES["Practitioner"].create(id="p2", identifier=[{"system": NPI_SYSTEM, "value": NPI_B}])
    response = fhir("PUT", "Practitioner/p2", json={**practitioner(NPI_A), "id": "p2"})
    assert response.status_code == 409
    assert Resource.objects.get(logical_id="p2").version_id == 1


def test_systems_marked_unique_are_enforced_for_their_types(fhir):
    def licensed(rtype: str) -> dict:
        body = {"resourceType": rtype, "identifier": [{"system": LICENSE, "value": "L-7"}]}
        return {**body, "name": "Bay Clinic"} if rtype == "Organization" else body

    assert fhir("POST", "Practitioner", json=licensed("Practitioner")).status_code == 201
    assert fhir("POST", "Practitioner", json=licensed("Practitioner")).status_code == 201
    UniqueIdentifierSystem.objects.create(system=LICENSE, resource_types="Organization")
    assert fhir("POST", "Organization", json=licensed("Organization")).status_code == 201
    assert fhir("POST", "Organization", json=licensed("Organization")).status_code == 409
    # Practitioners are not among the marked types: they may still share it.
    assert fhir("POST", "Practitioner", json=licensed("Practitioner")).status_code == 201


def test_a_transaction_cannot_create_two_holders_of_one_npi(fhir):
    entries = [
        {"resource": practitioner(NPI_A), "request": {"method": "POST", "url": "Practitioner"}},
        {"resource": organization(NPI_A), "request": {"method": "POST", "url": "Organization"}},
    ]
    response = fhir(
        "POST", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    assert response.status_code == 409, response.text
    assert not Resource.objects.exists()
    batch = fhir("POST", json={"resourceType": "Bundle", "type": "batch", "entry": entries})
    statuses = [e["response"]["status"] for e in batch.json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("409")


def test_concurrent_creates_with_one_npi_make_one_resource(fhir, settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes all writes; the identifier lock is PostgreSQL's")
    settings.RATE_LIMIT_CONCURRENT = 0
    start = threading.Barrier(6)
    answers: list[int] = []

    def racer(n: int):
        start.wait()
        answers.append(fhir("POST", "Practitioner", json=practitioner(NPI_A, f"F{n}")).status_code)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201] + [409] * 5
    assert Resource.objects.filter(resource_type="Practitioner").count() == 1
