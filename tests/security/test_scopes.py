"""Scope grammar (SMART v1/v2, NHS), per-interaction requirements, and the scope check."""

import json
from urllib.parse import urlparse

import pytest

from directory.registry import RESOURCE_TYPES
from security.models import ApiClient
from security.scopes import (
    client_grants,
    describe,
    effective_grants,
    nhs_grants,
    permits,
    required_grants,
    smart_grants,
    token_grants,
)
from tests.factories import FACTORIES

from .jwt_fixtures import *  # noqa: F403  (fixtures)
from .jwt_fixtures import TEST_CLIENT_HEADER, bearer, sign

FHIR_JSON = "application/fhir+json"


def grants_of(*scopes, parser=smart_grants) -> set[str]:
    return describe(parser(scopes))


def every_type(letters: str) -> set[str]:
    return {f"{t}.{letter}" for t in RESOURCE_TYPES for letter in letters}


# --- grammar ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope, expected",
    [
        ("system/Organization.read", {"Organization.r", "Organization.s"}),
        ("system/Organization.write", {"Organization.c", "Organization.u", "Organization.d"}),
        ("system/Organization.*", {f"Organization.{p}" for p in "cruds"}),
        ("system/Organization.rs", {"Organization.r", "Organization.s"}),
        ("system/Organization.r", {"Organization.r"}),
        ("system/Organization.s", {"Organization.s"}),
        ("system/Organization.cud", {"Organization.c", "Organization.u", "Organization.d"}),
        ("system/Endpoint.cruds", {f"Endpoint.{p}" for p in "cruds"}),
        ("system/PractitionerRole.ud", {"PractitionerRole.u", "PractitionerRole.d"}),
    ],
)
def test_smart_scopes_for_one_type(scope, expected):
    assert grants_of(scope) == expected


@pytest.mark.parametrize(
    "scope, letters",
    [("system/*.read", "rs"), ("system/*.write", "cud"), ("system/*.*", "cruds"),
     ("system/*.cruds", "cruds"), ("system/*.rs", "rs")],
)  # fmt: skip
def test_smart_wildcard_type_covers_all_five_resources(scope, letters):
    assert grants_of(scope) == every_type(letters)


@pytest.mark.parametrize(
    "scope",
    [
        "user/Organization.read",
        "patient/*.read",
        "user/*.cruds",
        "system/Patient.read",  # not a directory resource
        "system/organization.read",  # case matters
        "System/Organization.read",
        "system/Organization.sr",  # v2 letters must be in cruds order
        "system/Organization.rr",
        "system/Organization.x",
        "system/Organization.rs?name=Acme",  # a filter we could not enforce
        "system/Organization",
        "system/*.read extra",
        "organization/*.read",  # NHS form in the SMART claim
        "launch/patient",
        "openid",
        "",
    ],
)
def test_scopes_outside_the_smart_system_grammar_grant_nothing(scope):
    assert grants_of(scope) == set()


def test_nhs_scopes():
    assert grants_of("organization/*.read", parser=nhs_grants) == every_type("rs")
    assert grants_of("organization/*.write", parser=nhs_grants) == every_type("cud")
    assert grants_of("organization/Location.read", parser=nhs_grants) == {
        "Location.r",
        "Location.s",
    }


@pytest.mark.parametrize(
    "scope", ["organization/*.rs", "organization/*.*", "system/*.read", "patient/*.read"]
)
def test_scopes_outside_the_nhs_grammar_grant_nothing(scope):
    assert grants_of(scope, parser=nhs_grants) == set()


def test_several_scopes_add_up():
    assert grants_of("system/Organization.read", "system/Location.c", "openid") == {
        "Organization.r",
        "Organization.s",
        "Location.c",
    }


@pytest.mark.parametrize(
    "convention, expected",
    [
        ("smart", {"Organization.r", "Organization.s"}),
        ("nhs", every_type("cud")),
        ("both", every_type("cud") | {"Organization.r", "Organization.s"}),
    ],
)
def test_convention_decides_which_claims_are_read(jwt_settings, convention, expected):
    jwt_settings.SECURITY_SCOPE_CONVENTION = convention
    token_claims = {"scope": "system/Organization.read", "requested_scope": "organization/*.write"}
    assert describe(token_grants(token_claims)) == expected


def test_scope_claim_as_a_list_is_read(jwt_settings):
    assert describe(token_grants({"scope": ["system/Location.r", "system/Endpoint.s"]})) == {
        "Location.r",
        "Endpoint.s",
    }


@pytest.mark.parametrize("value", [42, None, {"scope": "system/*.*"}, ["system/*.*", 3]])
def test_scope_claim_of_another_shape_grants_nothing(jwt_settings, value):
    assert token_grants({"scope": value, "requested_scope": value}) == set()


# --- requirements -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interaction, letter",
    [("read", "r"), ("vread", "r"), ("history-instance", "r"), ("history-type", "r"),
     ("search-type", "s"), ("create", "c"), ("update", "u"), ("delete", "d")],
)  # fmt: skip
def test_each_interaction_needs_its_letter_on_its_type(interaction, letter):
    assert required_grants(interaction, "Practitioner") == {("Practitioner", letter)}


def test_system_history_needs_read_on_every_type():
    assert required_grants("history-system", "") == {(t, "r") for t in RESOURCE_TYPES}
    assert permits(smart_grants(["system/*.read"]), "history-system", "")
    assert not permits(smart_grants(["system/Organization.cruds"]), "history-system", "")


def test_capabilities_need_nothing_and_unknown_interactions_are_refused():
    assert permits(set(), "capabilities", "")
    assert required_grants("patch", "Organization") is None
    assert not permits(smart_grants(["system/*.*"]), "patch", "Organization")


def test_rules_can_be_overridden_per_type(jwt_settings):
    jwt_settings.SECURITY_SCOPE_RULES = {"Practitioner.search-type": "rs", "read": "rs"}
    assert required_grants("search-type", "Practitioner") == {
        ("Practitioner", "r"),
        ("Practitioner", "s"),
    }
    assert required_grants("search-type", "Location") == {("Location", "s")}
    assert required_grants("read", "Location") == {("Location", "r"), ("Location", "s")}


def test_client_scopes_cut_the_token_grants(jwt_settings):
    client = ApiClient(name="c", allowed_scopes="system/Organization.read organization/*.write")
    token_claims = {"scope": "system/*.* user/*.*"}
    assert describe(effective_grants(token_claims, client)) == every_type("cud") | {
        "Organization.r",
        "Organization.s",
    }


def test_client_without_allowed_scopes_gets_nothing(jwt_settings):
    assert effective_grants({"scope": "system/*.*"}, ApiClient(name="c")) == set()


def test_client_scopes_follow_the_convention(jwt_settings):
    jwt_settings.SECURITY_SCOPE_CONVENTION = "smart"
    assert client_grants(["organization/*.read"]) == set()


# --- the scope check, through the middleware --------------------------------------------------

# (method, path, interaction, letter needed on Organization; "all" = read on every type)
ORG_ROUTES = [
    ("get", "/fhir/Organization", "search-type", "s"),
    ("post", "/fhir/Organization/_search", "search-type", "s"),
    ("post", "/fhir/Organization", "create", "c"),
    ("get", "/fhir/Organization/_history", "history-type", "r"),
    ("get", "/fhir/Organization/org-1", "read", "r"),
    ("put", "/fhir/Organization/org-1", "update", "u"),
    ("delete", "/fhir/Organization/org-1", "delete", "d"),
    ("get", "/fhir/Organization/org-1/_history", "history-instance", "r"),
    ("get", "/fhir/Organization/org-1/_history/1", "vread", "r"),
]


def call(client, method, path, token=None, **extra):
    headers = bearer(token) if token else {}
    body = {}
    if method in ("post", "put") and not path.endswith("_search"):
        org = {"resourceType": "Organization", "name": "Scope Clinic"}
        if method == "put":
            org["id"] = path.rsplit("/", 1)[1]
        body = {"data": json.dumps(org), "content_type": FHIR_JSON}
    elif path.endswith("_search"):
        body = {"data": "name=x", "content_type": "application/x-www-form-urlencoded"}
    return getattr(client, method)(path, HTTP_ACCEPT=FHIR_JSON, **body, **headers, **extra)


@pytest.mark.django_db
@pytest.mark.parametrize("method, path, interaction, needed", ORG_ROUTES)
@pytest.mark.parametrize("letter", list("cruds"))
def test_each_interaction_needs_exactly_its_letter(
    chain, jwt_keys, client, method, path, interaction, needed, letter
):
    # An existing resource, so that PUT is an update (creating with PUT also needs "c").
    FACTORIES["Organization"].create(id="org-1")
    token = sign(jwt_keys.ec_a, scope=f"system/Organization.{letter}")
    response = call(client, method, path, token)
    context = response.wsgi_request.security
    assert context.interaction == interaction
    assert context.resource_type == "Organization"
    assert context.resource_id == ("org-1" if "org-1" in path else "")
    if letter == needed:
        assert response.status_code != 403
        assert context.outcome == "ok"
    else:
        assert response.status_code == 403
        assert context.outcome == "scope-missing"
        assert response.json()["issue"][0]["code"] == "forbidden"


@pytest.mark.django_db
def test_read_scope_for_one_type_does_not_reach_another_or_write(chain, jwt_keys, client):
    token = sign(jwt_keys.rsa_a, "RS256", scope="system/Organization.read")
    assert call(client, "get", "/fhir/Organization", token).status_code == 200
    assert call(client, "get", "/fhir/Practitioner", token).status_code == 403
    assert call(client, "get", "/fhir/Practitioner/p-1", token).status_code == 403
    assert call(client, "post", "/fhir/Organization", token).status_code == 403
    response = call(client, "get", "/fhir/Organization", token)
    assert response.wsgi_request.security.granted_scopes == {"Organization.r", "Organization.s"}


@pytest.mark.django_db
def test_write_scope_creates_but_does_not_read(chain, jwt_keys, client):
    token = sign(jwt_keys.ec_a, scope="system/*.write")
    created = call(client, "post", "/fhir/Organization", token)
    assert created.status_code == 201
    version_path = urlparse(created["Location"]).path
    assert call(client, "get", version_path, token).status_code == 403


@pytest.mark.django_db
def test_system_history_needs_read_on_all_types(chain, jwt_keys, client):
    org_only = sign(jwt_keys.ec_a, scope="system/Organization.* system/Location.*")
    assert call(client, "get", "/fhir/_history", org_only).status_code == 403
    all_read = sign(jwt_keys.ec_a, scope=None, requested_scope="organization/*.read")
    assert call(client, "get", "/fhir/_history", all_read).status_code == 200


@pytest.mark.django_db
def test_user_and_patient_scopes_reach_nothing(chain, jwt_keys, client):
    token = sign(jwt_keys.ec_a, scope="user/*.cruds patient/*.read user/Organization.read")
    assert call(client, "get", "/fhir/Organization", token).status_code == 403


@pytest.mark.django_db
def test_nhs_requested_scope_through_the_middleware(chain, jwt_keys, client):
    token = sign(jwt_keys.ec_a, scope=None, requested_scope="organization/*.read")
    assert call(client, "get", "/fhir/PractitionerRole", token).status_code == 200
    assert call(client, "delete", "/fhir/Endpoint/e-1", token).status_code == 403
    chain.SECURITY_SCOPE_CONVENTION = "smart"
    assert call(client, "get", "/fhir/PractitionerRole", token).status_code == 403


@pytest.mark.django_db
def test_client_allowed_scopes_cap_the_token(chain, jwt_keys, client):
    ApiClient.objects.create(name="capped", allowed_scopes="system/Organization.read")
    ApiClient.objects.create(name="empty", allowed_scopes="")
    token = sign(jwt_keys.ec_a, scope="system/*.*")
    capped = {f"HTTP_{TEST_CLIENT_HEADER.upper().replace('-', '_')}": "capped"}
    empty = {f"HTTP_{TEST_CLIENT_HEADER.upper().replace('-', '_')}": "empty"}
    assert call(client, "get", "/fhir/Organization", token, **capped).status_code == 200
    assert call(client, "post", "/fhir/Organization", token, **capped).status_code == 403
    assert call(client, "get", "/fhir/Location", token, **capped).status_code == 403
    assert call(client, "get", "/fhir/Organization", token, **empty).status_code == 403
    assert call(client, "get", "/fhir/Location", token).status_code == 200  # no client: token


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, path, status",
    [("get", "/fhir/Patient", 404), ("get", "/fhir/Patient/p1", 404),
     ("get", "/fhir/no/such/path/here", 404), ("patch", "/fhir/Organization/o1", 405)],
)  # fmt: skip
def test_unrouted_requests_need_no_scope(chain, jwt_keys, client, method, path, status):
    token = sign(jwt_keys.ec_a, scope="openid")
    response = call(client, method, path, token)
    assert response.status_code == status
    assert response.wsgi_request.security.outcome == "ok"
