"""The OpenAPI document: valid OpenAPI 3.1, served like the CapabilityStatement, and complete.

Complete means every route of the routing table at every supported resource type, and every
search parameter of the registry (filters and result parameters), GET and POST _search alike.
"""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from directory import registry
from fhirapi import routes
from fhirapi.openapi import path_template

from .conftest import send

pytestmark = pytest.mark.django_db

URL = "/fhir/openapi.json"
# Routed interactions the decision point refuses on Subscription (they could reach other
# clients' Subscriptions): the document must not offer them.
SUBSCRIPTION_REFUSED = {"history-type", "conditional-update", "conditional-delete"}


@pytest.fixture
def document(api) -> dict:
    response = api.get(URL)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.json()


def resolve(document: dict, item: dict) -> dict:
    """Follow a local $ref (#/components/...) to what it names."""
    if "$ref" not in item:
        return item
    node = document
    for part in item["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


def parameter_names(document: dict, operation: dict, location: str = "query") -> set[str]:
    parameters = [resolve(document, p) for p in operation["parameters"]]
    return {p["name"] for p in parameters if p["in"] == location}


def expected_search_names(resource_type: str) -> set[str]:
    declared = set(registry.RESOURCES[resource_type].params) | set(registry.COMMON_PARAMS)
    results = set(registry.RESULT_PARAMS) | {"_cursor"}
    if not registry.search_includes(resource_type):
        results.discard("_include")
    if not registry.search_revincludes(resource_type):
        results.discard("_revinclude")
    return declared | results


def test_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "http://testserver/fhir"}]


def test_every_route_at_every_type_is_described(document):
    expected = set()
    for route in routes.ROUTES:
        template = path_template(route.pattern)
        for resource_type in registry.RESOURCE_TYPES:
            if resource_type == "Subscription" and route.interaction in SUBSCRIPTION_REFUSED:
                continue
            expected.add((template.replace("{resource_type}", resource_type), route.method))
    # The Bulk Data operations (fhirapi/bulk.py, bulk_import.py) are described at system level.
    expected |= {
        ("/$export", "GET"),
        ("/$export-status/{job}", "GET"),
        ("/$export-status/{job}", "DELETE"),
        ("/$export-file/{job}/{type}.ndjson", "GET"),
        ("/$import", "POST"),
        ("/$import/{job}", "GET"),
        ("/$import/{job}", "DELETE"),
        ("/$import/{job}/errors", "GET"),
        ("/Subscription/{logical_id}/$status", "GET"),
        ("/Subscription/{logical_id}/$events", "GET"),
        ("/Subscription/$topic-list", "GET"),
    }
    described = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert described == expected
    operations = [op for item in document["paths"].values() for op in item.values()]
    operation_ids = [op["operationId"] for op in operations]
    assert len(operation_ids) == len(set(operation_ids))


@pytest.mark.parametrize("resource_type", registry.RESOURCE_TYPES)
def test_every_search_parameter_is_described(document, resource_type):
    expected = expected_search_names(resource_type)
    get = document["paths"][f"/{resource_type}"]["get"]
    assert parameter_names(document, get) - {"_format"} == expected
    form = document["paths"][f"/{resource_type}/_search"]["post"]["requestBody"]["content"]
    assert set(form["application/x-www-form-urlencoded"]["schema"]["properties"]) == expected


def test_include_values_and_enums_come_from_the_registry(document):
    get = document["paths"]["/PractitionerRole"]["get"]
    parameters = {p["name"]: p for p in (resolve(document, p) for p in get["parameters"])}
    includes = parameters["_include"]["schema"]["items"]["enum"]
    assert includes == registry.search_includes("PractitionerRole")
    org = document["paths"]["/Organization"]["get"]
    revincludes = {p["name"]: p for p in (resolve(document, p) for p in org["parameters"])}
    assert "PractitionerRole:organization" in revincludes["_revinclude"]["schema"]["items"]["enum"]
    sorts = parameters["_sort"]["schema"]["enum"]
    assert "name" not in sorts and "-_lastUpdated" in sorts  # PractitionerRole has no name


def test_writes_describe_bodies_headers_and_outcomes(document):
    create = document["paths"]["/Organization"]["post"]
    update = document["paths"]["/Organization/{logical_id}"]["put"]
    assert parameter_names(document, create, "header") == {"If-None-Exist", "Prefer"}
    assert parameter_names(document, update, "header") == {"If-Match", "Prefer"}
    for operation in (create, update):
        assert "application/fhir+json" in operation["requestBody"]["content"]
        error = resolve(document, operation["responses"]["422"])
        schema = error["content"]["application/fhir+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/OperationOutcome"}


def test_import_describes_both_bodies_and_its_answers(document):
    kick_off = document["paths"]["/$import"]["post"]
    body = kick_off["requestBody"]["content"]
    assert body["application/fhir+ndjson"]["schema"]["type"] == "string"
    parameters = resolve(document, body["application/fhir+json"]["schema"])
    assert parameters["properties"]["resourceType"] == {"const": "Parameters"}
    assert kick_off["parameters"][0]["name"] == "Prefer" and kick_off["parameters"][0]["required"]
    assert "Content-Location" in kick_off["responses"]["202"]["headers"]
    for status in ("400", "403", "413", "415"):
        error = resolve(document, kick_off["responses"][status])
        schema = error["content"]["application/fhir+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/OperationOutcome"}
    poll = document["paths"]["/$import/{job}"]["get"]["responses"]
    assert "application/json" in poll["200"]["content"]
    assert "X-Progress" in poll["202"]["headers"] and "404" in poll
    errors = document["paths"]["/$import/{job}/errors"]["get"]["responses"]["200"]
    assert "application/fhir+ndjson" in errors["content"]
    for item in ("/$import", "/$import/{job}", "/$import/{job}/errors"):
        for operation in document["paths"][item].values():
            assert operation["security"] == document["security"]


def test_subscription_offers_only_what_the_server_allows(document, api):
    assert set(document["paths"]["/Subscription"]) == {"get", "post"}
    assert "/Subscription/_history" not in document["paths"]
    create = document["paths"]["/Subscription"]["post"]
    assert parameter_names(document, create, "header") == {"Prefer"}  # no conditional create
    # What is left out is what the server refuses; what is described is not refused.
    assert send(api, "GET", "/fhir/Subscription/_history").status_code == 403
    assert send(api, "DELETE", "/fhir/Subscription?url=x").status_code == 403
    assert send(api, "GET", "/fhir/Subscription").status_code == 200
    listed = send(api, "GET", "/fhir/Subscription/$topic-list")
    assert listed.status_code == 200 and listed.json()["resourceType"] == "Parameters"
    status = document["paths"]["/Subscription/{logical_id}/$status"]["get"]
    assert parameter_names(document, status, "path") == {"logical_id"}
    assert status["responses"]["200"]["content"]["application/fhir+json"]["schema"] == {
        "$ref": "#/components/schemas/Bundle"
    }
    events = document["paths"]["/Subscription/{logical_id}/$events"]["get"]
    assert parameter_names(document, events, "query") >= {
        "eventsSinceNumber",
        "eventsUntilNumber",
        "content",
    }


def test_subscription_paths_match_the_capability_statement(document, api):
    statement = send(api, "GET", "/fhir/metadata").json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    listed = {i["code"] for i in entry["interaction"]}
    described = set()
    for route in (r for r in routes.ROUTES if r.level != "system"):
        path = path_template(route.pattern).replace("{resource_type}", "Subscription")
        if route.method.lower() in document["paths"].get(path, {}):
            described.add(route.interaction)
    assert described == listed
    operations = {op["name"] for op in entry["operation"]}
    assert {"/Subscription/{logical_id}/$status", "/Subscription/$topic-list"} <= set(
        document["paths"]
    )
    assert operations == {"status", "events", "topic-list"}


def test_security_follows_the_settings(api, settings):
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    settings.SECURITY_API_KEY_HEADER = "X-Directory-Key"
    document = api.get(URL, HTTP_X_DIRECTORY_KEY="ignored").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKeyHeader"]["name"] == "X-Directory-Key"
    assert schemes["clientCertificate"]["type"] == "mutualTLS"
    assert schemes["bearerToken"]["bearerFormat"] == "JWT"
    read = document["paths"]["/Practitioner/{logical_id}"]["get"]
    assert {"clientCertificate": [], "apiKeyHeader": [], "bearerToken": []} in read["security"]
    assert {"clientCertificate": [], "apiKeyQuery": [], "bearerToken": []} in read["security"]
    assert document["paths"]["/metadata"]["get"]["security"] == [{"clientCertificate": []}]

    settings.SECURITY_REQUIRE_CLIENT_CERT = False
    settings.SECURITY_REQUIRE_BEARER = False
    document = api.get(URL).json()
    assert document["paths"]["/metadata"]["get"]["security"] == [{}]
    assert {"apiKeyQuery": []} in document["paths"]["/Practitioner/{logical_id}"]["get"]["security"]


def test_served_like_metadata_certificate_but_no_key_or_token(credentials, settings):
    """Discovery, like /fhir/metadata: the transport checks apply, key and token do not."""
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    certificate_only = APIClient()
    meta = {k: v for k, v in credentials.meta.items() if k.startswith("HTTP_X_SSL")}
    assert meta, "the certificate headers are passed as the TLS terminator would"
    response = certificate_only.get(URL, **meta)
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.1")

    refused = APIClient().get(URL)
    assert refused.status_code in (401, 403)
    assert refused.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "options"])
def test_other_methods_get_an_operation_outcome(api, method):
    response = getattr(api, method)(URL)
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"


def test_head_answers_like_get(api):
    response = api.head(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
