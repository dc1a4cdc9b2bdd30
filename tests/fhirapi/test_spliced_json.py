"""Stored JSON goes into Bundles as stored (spliced, not parsed and re-encoded) where nothing
reduces it, and the response stays one valid JSON document whatever it holds."""

from __future__ import annotations

import json

import orjson
import pytest

from directory.models import Resource, ResourceVersion
from directory.stored import StoredResource, resource_type_of
from fhirapi.renderers import dumps
from tests.factories import OrganizationFactory, PractitionerRoleFactory

pytestmark = pytest.mark.django_db


def stored_text(resource: dict) -> str:
    """The stored text, first rewritten as equivalent JSON that re-encoding would not give back
    (spaces after separators, ASCII escapes): found verbatim in a response only if spliced."""
    row = Resource.objects.get(resource_type=resource["resourceType"], logical_id=resource["id"])
    text = json.dumps(json.loads(row.content), ensure_ascii=True)
    Resource.objects.filter(pk=row.pk).update(content=text)
    return text


def test_a_search_bundle_carries_each_stored_resource_byte_for_byte(api):
    organization = OrganizationFactory.create()
    role = PractitionerRoleFactory.create(
        organization={"reference": f"Organization/{organization['id']}"}
    )
    role_text, organization_text = stored_text(role), stored_text(organization)
    response = api.get("/fhir/PractitionerRole?_include=PractitionerRole:organization")
    assert response.status_code == 200
    body = response.content.decode()
    bundle = json.loads(body)  # still one valid document
    modes = {e["resource"]["resourceType"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"PractitionerRole": "match", "Organization": "include"}
    assert f'"resource":{role_text}' in body
    assert f'"resource":{organization_text}' in body


def test_summary_and_elements_still_reduce_the_resource(api):
    organization = OrganizationFactory.create()
    for query in ("_summary=true", "_elements=name"):
        bundle = api.get(f"/fhir/Organization?{query}").json()
        (entry,) = bundle["entry"]
        assert entry["resource"]["id"] == organization["id"]
        assert entry["resource"]["meta"]["tag"][-1]["code"] == "SUBSETTED", query
        assert (
            stored_text(organization) not in api.get(f"/fhir/Organization?{query}").content.decode()
        )


def test_history_entries_are_spliced_too(api):
    organization = OrganizationFactory.create()
    text = json.dumps(organization, ensure_ascii=True)
    ResourceVersion.objects.filter(logical_id=organization["id"]).update(content=text)
    response = api.get(f"/fhir/Organization/{organization['id']}/_history")
    assert response.status_code == 200
    assert f'"resource":{text}' in response.content.decode()


def test_a_stored_resource_reads_as_the_parsed_resource():
    text = '{"resourceType":"Organization","id":"a","name":"Ü"}'
    stored = StoredResource("Organization", text)
    assert stored == json.loads(text) and stored["name"] == "Ü" and stored.get("x") is None
    assert resource_type_of(stored) == "Organization"
    assert resource_type_of({"resourceType": "Location"}) == "Location"


def test_values_orjson_refuses_fall_back_to_the_standard_library():
    huge = 2**70  # beyond 64 bits: orjson refuses it, JSON allows it
    stored = StoredResource("Organization", '{"resourceType":"Organization","id":"a"}')
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps({"n": huge})
    document = {"n": huge, "entry": [{"resource": stored}], "text": "é"}
    assert json.loads(dumps(document)) == {
        "n": huge,
        "entry": [{"resource": {"resourceType": "Organization", "id": "a"}}],
        "text": "é",
    }
    assert dumps({"text": "é"}) == '{"text":"é"}'.encode()
