"""read, vread, create, update and delete for every resource type, with their headers."""

from __future__ import annotations

import pytest
from django.utils.http import parse_http_date

from tests.factories import NPI_SYSTEM, OrganizationFactory, PractitionerRoleFactory

from .conftest import FACTORIES, body_for, outcome_issue, send

pytestmark = pytest.mark.django_db

BASE = "http://testserver/fhir"


def assert_version_headers(response, resource_type, logical_id, version):
    assert response["ETag"] == f'W/"{version}"'
    assert parse_http_date(response["Last-Modified"]) > 0
    if "Location" in response:
        assert response["Location"] == f"{BASE}/{resource_type}/{logical_id}/_history/{version}"


# ---------------------------------------------------------------- create


def test_create_returns_201_with_location_etag_and_representation(api, resource_type):
    response = send(api, "POST", f"/fhir/{resource_type}", body_for(resource_type))
    assert response.status_code == 201
    body = response.json()
    assert body["resourceType"] == resource_type and body["meta"]["versionId"] == "1"
    assert response["Location"] == f"{BASE}/{resource_type}/{body['id']}/_history/1"
    assert_version_headers(response, resource_type, body["id"], 1)
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"


def test_create_ignores_client_supplied_id(api):
    response = send(api, "POST", "/fhir/Organization", body_for("Organization", id="mine"))
    assert response.status_code == 201
    assert response.json()["id"] != "mine"


def test_create_prefer_minimal_has_empty_body(api, resource_type):
    response = send(
        api,
        "POST",
        f"/fhir/{resource_type}",
        body_for(resource_type),
        HTTP_PREFER="return=minimal",
    )
    assert response.status_code == 201
    assert response.content == b""
    assert "/_history/1" in response["Location"] and response["ETag"] == 'W/"1"'


def test_create_prefer_operation_outcome(api):
    response = send(
        api, "POST", "/fhir/Location", body_for("Location"), HTTP_PREFER="return=OperationOutcome"
    )
    assert response.status_code == 201
    issue = outcome_issue(response)
    assert issue["severity"] == "information"
    assert "Location/" in issue["diagnostics"]


def test_create_prefer_representation_explicit(api):
    response = send(
        api, "POST", "/fhir/Endpoint", body_for("Endpoint"), HTTP_PREFER="return=representation"
    )
    assert response.status_code == 201 and response.json()["resourceType"] == "Endpoint"


def test_create_then_read_round_trip(api, resource_type):
    created = send(api, "POST", f"/fhir/{resource_type}", body_for(resource_type)).json()
    response = api.get(f"/fhir/{resource_type}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_conditional_create_returns_existing_match(api):
    existing = OrganizationFactory.create()
    value = existing["identifier"][0]["value"]
    response = send(
        api,
        "POST",
        "/fhir/Organization",
        body_for("Organization"),
        HTTP_IF_NONE_EXIST=f"identifier={NPI_SYSTEM}|{value}",
    )
    assert response.status_code == 200
    assert response.json()["id"] == existing["id"]
    assert response["ETag"] == 'W/"1"'


def test_conditional_create_creates_when_nothing_matches(api):
    response = send(
        api,
        "POST",
        "/fhir/Organization",
        body_for("Organization"),
        HTTP_IF_NONE_EXIST=f"identifier={NPI_SYSTEM}|0000000000",
    )
    assert response.status_code == 201


def test_conditional_create_with_several_matches_is_412(api):
    # A licence number, not an NPI: one NPI identifies one Organization only.
    shared = [{"system": "https://example.org/state-license", "value": "L-1999"}]
    OrganizationFactory.create(identifier=shared)
    OrganizationFactory.create(identifier=shared)
    response = send(
        api,
        "POST",
        "/fhir/Organization",
        body_for("Organization"),
        HTTP_IF_NONE_EXIST="identifier=https://example.org/state-license|L-1999",
    )
    assert response.status_code == 412
    assert outcome_issue(response)["severity"] == "error"


# ---------------------------------------------------------------- read / vread


def test_read_has_etag_and_last_modified(api, stored, resource_type):
    response = api.get(f"/fhir/{resource_type}/{stored['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == stored["id"]
    assert_version_headers(response, resource_type, stored["id"], 1)
    assert response["Cache-Control"] == "no-store"


def test_read_unknown_id_is_404(api, resource_type):
    response = api.get(f"/fhir/{resource_type}/does-not-exist")
    assert response.status_code == 404
    assert outcome_issue(response)["code"] == "not-found"
    assert response["Cache-Control"] == "no-store"


def test_vread_returns_each_version(api, stored, resource_type):
    changed = {**stored, "meta": None}
    changed.pop("meta")
    send(api, "PUT", f"/fhir/{resource_type}/{stored['id']}", changed)
    first = api.get(f"/fhir/{resource_type}/{stored['id']}/_history/1")
    second = api.get(f"/fhir/{resource_type}/{stored['id']}/_history/2")
    assert first.status_code == second.status_code == 200
    assert first.json()["meta"]["versionId"] == "1" and first["ETag"] == 'W/"1"'
    assert second.json()["meta"]["versionId"] == "2" and second["ETag"] == 'W/"2"'


@pytest.mark.parametrize("version", ["9", "abc"])
def test_vread_unknown_version_is_404(api, stored, resource_type, version):
    response = api.get(f"/fhir/{resource_type}/{stored['id']}/_history/{version}")
    assert response.status_code == 404
    outcome_issue(response)


def test_vread_of_deletion_is_410(api, stored, resource_type):
    api.delete(f"/fhir/{resource_type}/{stored['id']}")
    response = api.get(f"/fhir/{resource_type}/{stored['id']}/_history/2")
    assert response.status_code == 410
    assert outcome_issue(response)["code"] == "deleted"


# ---------------------------------------------------------------- update


def test_update_makes_version_2(api, stored, resource_type):
    response = send(api, "PUT", f"/fhir/{resource_type}/{stored['id']}", stored)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert_version_headers(response, resource_type, stored["id"], 2)


def test_update_with_client_id_creates_with_201(api, resource_type):
    body = body_for(resource_type, id="client-chosen")
    response = send(api, "PUT", f"/fhir/{resource_type}/client-chosen", body)
    assert response.status_code == 201
    assert response["Location"] == f"{BASE}/{resource_type}/client-chosen/_history/1"
    assert api.get(f"/fhir/{resource_type}/client-chosen").status_code == 200


def test_update_if_match_current_version_succeeds(api, stored, resource_type):
    response = send(
        api, "PUT", f"/fhir/{resource_type}/{stored['id']}", stored, HTTP_IF_MATCH='W/"1"'
    )
    assert response.status_code == 200 and response["ETag"] == 'W/"2"'


def test_update_if_match_stale_version_is_412(api, stored, resource_type):
    send(api, "PUT", f"/fhir/{resource_type}/{stored['id']}", stored)
    response = send(
        api, "PUT", f"/fhir/{resource_type}/{stored['id']}", stored, HTTP_IF_MATCH='W/"1"'
    )
    assert response.status_code == 412
    assert outcome_issue(response)["severity"] == "error"
    assert api.get(f"/fhir/{resource_type}/{stored['id']}")["ETag"] == 'W/"2"'


def test_update_malformed_if_match_is_400(api, stored):
    response = send(
        api, "PUT", f"/fhir/{stored['resourceType']}/{stored['id']}", stored, HTTP_IF_MATCH="junk"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("resource_type", ["Practitioner"])
def test_update_prefer_minimal_and_outcome(api, stored, resource_type):
    path = f"/fhir/Practitioner/{stored['id']}"
    minimal = send(api, "PUT", path, stored, HTTP_PREFER="return=minimal")
    assert minimal.status_code == 200 and minimal.content == b""
    assert minimal["ETag"] == 'W/"2"'
    informed = send(api, "PUT", path, stored, HTTP_PREFER="return=OperationOutcome")
    assert informed.status_code == 200
    assert outcome_issue(informed)["severity"] == "information"


def test_update_id_mismatch_is_400(api, stored, resource_type):
    response = send(api, "PUT", f"/fhir/{resource_type}/other-id", stored)
    assert response.status_code == 400
    assert outcome_issue(response)["expression"] == ["id"]


def test_update_without_id_in_body_is_400(api, stored, resource_type):
    body = {k: v for k, v in stored.items() if k != "id"}
    response = send(api, "PUT", f"/fhir/{resource_type}/{stored['id']}", body)
    assert response.status_code == 400
    assert outcome_issue(response)["expression"] == ["id"]


def test_update_with_invalid_id_in_url_is_400(api):
    bad = "x" * 65
    response = send(api, "PUT", f"/fhir/Organization/{bad}", body_for("Organization", id=bad))
    assert response.status_code == 400


# ---------------------------------------------------------------- delete


def test_delete_then_read_is_410(api, stored, resource_type):
    response = api.delete(f"/fhir/{resource_type}/{stored['id']}")
    assert response.status_code == 204 and response.content == b""
    assert response["Cache-Control"] == "no-store"
    gone = api.get(f"/fhir/{resource_type}/{stored['id']}")
    assert gone.status_code == 410
    assert outcome_issue(gone)["code"] == "deleted"


def test_delete_is_idempotent(api, stored, resource_type):
    assert api.delete(f"/fhir/{resource_type}/{stored['id']}").status_code == 204
    assert api.delete(f"/fhir/{resource_type}/{stored['id']}").status_code == 204
    assert api.delete(f"/fhir/{resource_type}/never-existed").status_code == 204


def test_delete_of_referenced_resource_is_409(api):
    org = OrganizationFactory.create()
    PractitionerRoleFactory.create(organization={"reference": f"Organization/{org['id']}"})
    response = api.delete(f"/fhir/Organization/{org['id']}")
    assert response.status_code == 409
    assert outcome_issue(response)["code"] == "conflict"
    assert api.get(f"/fhir/Organization/{org['id']}").status_code == 200


def test_update_after_delete_recreates(api, stored, resource_type):
    api.delete(f"/fhir/{resource_type}/{stored['id']}")
    response = send(api, "PUT", f"/fhir/{resource_type}/{stored['id']}", stored)
    assert response.status_code == 201
    assert response["ETag"] == 'W/"3"'


# ---------------------------------------------------------------- invalid bodies


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_malformed_json_is_400(api, method):
    path = "/fhir/Organization/x" if method == "PUT" else "/fhir/Organization"
    response = send(api, method, path, '{"resourceType": "Organization",')
    assert response.status_code == 400
    assert "JSON" in outcome_issue(response)["diagnostics"]


@pytest.mark.parametrize("content", ["[]", '"text"', "", "{}"])
def test_non_resource_bodies_are_400(api, content):
    response = send(api, "POST", "/fhir/Organization", content)
    assert response.status_code == 400
    outcome_issue(response)


def test_wrong_resource_type_is_400(api):
    response = send(api, "POST", "/fhir/Organization", body_for("Practitioner"))
    assert response.status_code == 400
    assert outcome_issue(response)["expression"] == ["resourceType"]


def test_wrong_resource_type_on_put_is_400(api):
    body = body_for("Practitioner", id="p1")
    response = send(api, "PUT", "/fhir/Organization/p1", body)
    assert response.status_code == 400


def test_invalid_element_is_422_naming_it(api):
    body = body_for("Organization", active="not-a-boolean")
    response = send(api, "POST", "/fhir/Organization", body)
    assert response.status_code == 422
    issue = outcome_issue(response)
    assert issue["expression"] == ["Organization.active"]


def test_unknown_element_is_422(api):
    response = send(api, "POST", "/fhir/Endpoint", body_for("Endpoint", bogus=1))
    assert response.status_code == 422
    assert outcome_issue(response)["expression"] == ["Endpoint.bogus"]


def test_bad_code_is_422(api):
    response = send(api, "POST", "/fhir/Location", body_for("Location", status="sometimes"))
    assert response.status_code == 422
    assert outcome_issue(response)["expression"] == ["Location.status"]


def test_dangling_reference_is_422(api):
    body = body_for("PractitionerRole", practitioner={"reference": "Practitioner/missing"})
    response = send(api, "POST", "/fhir/PractitionerRole", body)
    assert response.status_code == 422
    assert "Practitioner/missing" in outcome_issue(response)["diagnostics"]


def test_factories_cover_every_registered_type():
    from directory.registry import OWNED_TYPES, RESOURCE_TYPES

    # Owned types (Subscription) are written with an owner and checked channel: tests/subscriptions.
    assert set(FACTORIES) == set(RESOURCE_TYPES) - set(OWNED_TYPES)


def test_last_modified_matches_meta_last_updated(api, stored, resource_type):
    from datetime import datetime

    response = api.get(f"/fhir/{resource_type}/{stored['id']}")
    last_updated = datetime.fromisoformat(response.json()["meta"]["lastUpdated"])
    assert parse_http_date(response["Last-Modified"]) == int(last_updated.timestamp())


def test_invalid_element_on_update_is_422(api, stored, resource_type):
    body = {**stored, "active": {"nested": "object"}}
    response = send(api, "PUT", f"/fhir/{resource_type}/{stored['id']}", body)
    assert response.status_code == 422
    assert outcome_issue(response)["expression"] == [f"{resource_type}.active"]
    assert api.get(f"/fhir/{resource_type}/{stored['id']}")["ETag"] == 'W/"1"'


@pytest.mark.parametrize("criteria", ["", "garbage", "identifier=", f"identifier={NPI_SYSTEM}|1&x"])
def test_conditional_create_without_criteria_is_400(api, criteria):
    OrganizationFactory.create()  # a blank criterion must not match this one
    response = send(
        api, "POST", "/fhir/Organization", body_for("Organization"), HTTP_IF_NONE_EXIST=criteria
    )
    assert response.status_code == 400
    outcome_issue(response)
    assert api.get("/fhir/Organization/_history").json()["total"] == 1


def test_conditional_create_prefer_minimal_on_match(api):
    existing = OrganizationFactory.create()
    value = existing["identifier"][0]["value"]
    response = send(
        api,
        "POST",
        "/fhir/Organization",
        body_for("Organization"),
        HTTP_IF_NONE_EXIST=f"identifier={NPI_SYSTEM}|{value}",
        HTTP_PREFER="return=minimal",
    )
    assert response.status_code == 200 and response.content == b""
    assert f"/Organization/{existing['id']}/_history/1" in response["Location"]
