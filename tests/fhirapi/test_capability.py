"""The CapabilityStatement lists exactly what is routed, and everything it lists works."""

from __future__ import annotations

import pytest
from django.urls import resolve
from fhir.resources.R4B import get_fhir_model_class

from directory import registry
from fhirapi import capability, routes
from tests.factories import FACTORIES

from .conftest import TYPES, body_for, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def statement(api) -> dict:
    response = api.get("/fhir/metadata")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    return response.json()


def resource_entry(statement: dict, resource_type: str) -> dict:
    (rest,) = statement["rest"]
    return next(r for r in rest["resource"] if r["type"] == resource_type)


def listed_codes(statement: dict, resource_type: str) -> set[str]:
    return {i["code"] for i in resource_entry(statement, resource_type)["interaction"]}


def test_statement_header_fields(statement):
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["status"] == "active" and statement["kind"] == "instance"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["format"] == ["json"]
    assert statement["rest"][0]["mode"] == "server"
    assert statement["implementation"]["url"] == "http://testserver/fhir"


def test_statement_is_valid_fhir(statement):
    get_fhir_model_class("CapabilityStatement").model_validate(statement)


def test_base_url_setting_is_used(api, settings):
    settings.FHIR_BASE_URL = "https://directory.example.org/fhir/"
    statement = api.get("/fhir/metadata").json()
    assert statement["implementation"]["url"] == "https://directory.example.org/fhir"


def test_every_registered_type_is_listed(statement):
    (rest,) = statement["rest"]
    assert [r["type"] for r in rest["resource"]] == list(registry.RESOURCE_TYPES)


@pytest.mark.parametrize("resource_type", TYPES)
def test_resource_flags(statement, resource_type):
    entry = resource_entry(statement, resource_type)
    assert entry["versioning"] == "versioned"
    assert entry["readHistory"] is True and entry["updateCreate"] is True
    assert entry["conditionalCreate"] is True and entry["conditionalUpdate"] is True
    assert entry["conditionalDelete"] == "single"


@pytest.mark.parametrize("resource_type", TYPES)
def test_interactions_equal_routing_table(statement, resource_type):
    routed = {r.interaction for r in routes.ROUTES if r.level in ("type", "instance")}
    # Conditional writes are advertised by the conditionalUpdate / conditionalDelete flags.
    routed -= {"conditional-update", "conditional-delete"}
    assert listed_codes(statement, resource_type) == routed


def test_system_interactions_equal_routing_table(statement):
    routed = {r.interaction for r in routes.ROUTES if r.level == "system"} - {"capabilities"}
    # The base's POST route takes both Bundle types.
    routed |= {"batch"}
    assert {i["code"] for i in statement["rest"][0]["interaction"]} == routed


@pytest.mark.parametrize("resource_type", TYPES)
def test_search_params_come_from_registry(statement, resource_type):
    entry = resource_entry(statement, resource_type)
    listed = {p["name"]: p["type"] for p in entry["searchParam"]}
    params = registry.RESOURCES[resource_type].params.items()
    expected = {name: p.type for name, p in params if capability.searchable(p)}
    expected.update(registry.COMMON_PARAMS)
    assert listed == expected
    includes = registry.search_includes(resource_type)
    assert entry.get("searchInclude", []) == ([*includes, f"{resource_type}:*"] if includes else [])
    assert entry.get("searchRevInclude", []) == registry.search_revincludes(resource_type)


def test_every_route_resolves_to_its_pattern():
    samples = {
        "metadata": "/fhir/metadata",
        "system-history": "/fhir/_history",
        "type": "/fhir/Organization",
        "type-search": "/fhir/Organization/_search",
        "type-history": "/fhir/Organization/_history",
        "instance": "/fhir/Organization/abc",
        "instance-history": "/fhir/Organization/abc/_history",
        "version": "/fhir/Organization/abc/_history/2",
        "system": "/fhir/",
    }
    assert set(samples) == set(routes.PATTERNS)
    for key, path in samples.items():
        assert resolve(path).url_name == key


# ---------------------------------------------------------------- every listed interaction works


def _stored(resource_type):
    return FACTORIES[resource_type].create()


def drive_read(api, t):
    return api.get(f"/fhir/{t}/{_stored(t)['id']}"), 200


def drive_vread(api, t):
    return api.get(f"/fhir/{t}/{_stored(t)['id']}/_history/1"), 200


def drive_update(api, t):
    stored = _stored(t)
    return send(api, "PUT", f"/fhir/{t}/{stored['id']}", stored), 200


def drive_delete(api, t):
    return api.delete(f"/fhir/{t}/{_stored(t)['id']}"), 204


def drive_create(api, t):
    return send(api, "POST", f"/fhir/{t}", body_for(t)), 201


def drive_search(api, t):
    return api.get(f"/fhir/{t}", {"_id": _stored(t)["id"]}), 200


def drive_history_instance(api, t):
    return api.get(f"/fhir/{t}/{_stored(t)['id']}/_history"), 200


def drive_history_type(api, t):
    _stored(t)
    return api.get(f"/fhir/{t}/_history"), 200


DRIVERS = {
    "read": drive_read,
    "vread": drive_vread,
    "update": drive_update,
    "delete": drive_delete,
    "create": drive_create,
    "search-type": drive_search,
    "history-instance": drive_history_instance,
    "history-type": drive_history_type,
}


def test_there_is_a_driver_for_every_listed_interaction(statement):
    for resource_type in TYPES:
        assert listed_codes(statement, resource_type) == set(DRIVERS)


@pytest.mark.parametrize("code", sorted(DRIVERS))
@pytest.mark.parametrize("resource_type", TYPES)
def test_listed_interaction_works(api, code, resource_type):
    response, expected = DRIVERS[code](api, resource_type)
    assert response.status_code == expected, response.content
    if response.content:
        assert response.json()["resourceType"] in (resource_type, "Bundle")


@pytest.mark.parametrize("resource_type", TYPES)
def test_listed_conditional_writes_work(api, resource_type):
    stored = _stored(resource_type)
    path = f"/fhir/{resource_type}?_id={stored['id']}"
    assert send(api, "PUT", path, {**stored, "meta": {}}).status_code == 200
    assert api.delete(path).status_code == 204
    assert api.get(f"/fhir/{resource_type}/{stored['id']}").status_code == 410


@pytest.mark.parametrize("bundle_type", ["batch", "transaction"])
def test_listed_bundle_interactions_work(api, statement, bundle_type):
    listed = {i["code"] for i in statement["rest"][0]["interaction"]}
    assert listed == {"history-system", "batch", "transaction"}
    bundle = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {"resource": body_for("Endpoint"), "request": {"method": "POST", "url": "Endpoint"}}
        ],
    }
    response = send(api, "POST", "/fhir", bundle)
    assert response.status_code == 200, response.content
    assert response.json()["type"] == f"{bundle_type}-response"


def test_system_operations_are_export_and_import(statement):
    operations = {op["name"]: op for op in statement["rest"][0]["operation"]}
    assert set(operations) == {"export", "import"}
    assert operations["export"]["definition"] == capability.EXPORT_DEFINITION
    assert operations["import"]["definition"] == capability.IMPORT_DEFINITION
    assert "$import/{job}" in operations["import"]["documentation"]
    for name in operations:  # routed to the operation, not to the unknown-endpoint answer
        assert resolve(f"/fhir/${name}").url_name != "unknown"


def test_listed_import_is_served(api):
    # Without `Prefer: respond-async` the handler itself refuses: the route is the operation's.
    response = api.post("/fhir/$import", b"{}\n", content_type="application/fhir+ndjson")
    assert response.status_code == 400, response.content
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "respond-async" in response.json()["issue"][0]["diagnostics"]


def test_subscription_lists_what_the_decision_point_allows(statement, api):
    entry = resource_entry(statement, "Subscription")
    assert listed_codes(statement, "Subscription") == {
        "create",
        "read",
        "vread",
        "update",
        "delete",
        "history-instance",
        "search-type",
    }
    assert entry["conditionalCreate"] is False and entry["conditionalUpdate"] is False
    assert entry["conditionalDelete"] == "not-supported"
    # Routed but unlisted: refused.
    assert api.get("/fhir/Subscription/_history").status_code == 403
    assert (
        send(api, "PUT", "/fhir/Subscription?url=x", {"resourceType": "Subscription"}).status_code
        == 403
    )


def test_listed_system_history_works(api, statement):
    _stored("Endpoint")
    response = api.get("/fhir/_history")
    assert response.status_code == 200 and response.json()["total"] == 1


def test_security_advertises_the_builtin_token_endpoint(api, settings):
    settings.OAUTH_SERVER_URL = "https://directory.example.org"
    statement = api.get("/fhir/metadata").json()
    get_fhir_model_class("CapabilityStatement").model_validate(statement)
    security = statement["rest"][0]["security"]
    (oauth_uris,) = security["extension"]
    assert oauth_uris["url"].endswith("/StructureDefinition/oauth-uris")
    uris = {item["url"]: item["valueUri"] for item in oauth_uris["extension"]}
    assert uris == {
        "token": "https://directory.example.org/oauth/token",
        "register": "https://directory.example.org/oauth/register",
    }
    (coding,) = security["service"][0]["coding"]
    assert coding["code"] == "SMART-on-FHIR"


def test_no_token_endpoints_without_the_builtin_server(api, settings):
    """mTLS, API keys and scopes are always described; token endpoints only when they exist."""
    settings.OAUTH_SERVER_URL = ""
    security = api.get("/fhir/metadata").json()["rest"][0]["security"]
    assert "extension" not in security
    assert "API key" in security["description"]
