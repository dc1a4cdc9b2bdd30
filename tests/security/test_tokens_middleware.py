"""The bearer check in the middleware chain: missing, invalid and valid tokens, and metadata."""

import logging

import pytest

from .jwt_fixtures import *  # noqa: F403  (fixtures)
from .jwt_fixtures import ISSUER_A, bearer, sign, unsigned

pytestmark = pytest.mark.django_db
FHIR_JSON = "application/fhir+json"


def get(client, path, **headers):
    return client.get(path, HTTP_ACCEPT=FHIR_JSON, **headers)


def assert_refused(response, status, outcome):
    assert response.status_code == status
    assert response.wsgi_request.security.outcome == outcome
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_missing_token_is_refused(chain, client):
    assert_refused(get(client, "/fhir/Organization"), 401, "token-missing")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"])
def test_authorization_without_a_bearer_token_counts_as_missing(chain, client, header):
    response = get(client, "/fhir/Organization", HTTP_AUTHORIZATION=header)
    assert_refused(response, 401, "token-missing")


def test_invalid_token_is_refused(chain, client, jwt_keys):
    assert_refused(get(client, "/fhir/Organization", **bearer(unsigned())), 401, "token-invalid")
    expired = sign(jwt_keys.ec_a, iat=1, exp=2)
    assert_refused(get(client, "/fhir/Organization", **bearer(expired)), 401, "token-invalid")


def test_valid_token_fills_the_context(chain, client, jwt_keys):
    response = get(client, "/fhir/Organization", **bearer(sign(jwt_keys.ec_a, sub="sys-42")))
    assert response.status_code == 200
    context = response.wsgi_request.security
    assert context.token_subject == "sys-42"
    assert context.token_issuer == ISSUER_A
    assert context.token_claims["scope"] == "system/*.read"


def test_scheme_is_case_insensitive(chain, client, jwt_keys):
    token = sign(jwt_keys.ec_a)
    response = get(client, "/fhir/Organization", HTTP_AUTHORIZATION=f"bearer {token}")
    assert response.status_code == 200


def test_metadata_needs_no_token(chain, client):
    response = get(client, "/fhir/metadata")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "CapabilityStatement"


def test_non_api_paths_are_left_alone(chain, client):
    assert client.get("/healthz").status_code != 401


def test_tokens_optional_when_not_required(chain, client, jwt_keys):
    chain.SECURITY_REQUIRE_BEARER = False
    assert get(client, "/fhir/Practitioner").status_code == 200
    # A token that is sent must still be valid, and its scopes still apply.
    assert_refused(
        get(client, "/fhir/Practitioner", **bearer("junk.junk.junk")), 401, "token-invalid"
    )
    org_only = bearer(sign(jwt_keys.ec_a, scope="system/Organization.read"))
    assert_refused(get(client, "/fhir/Practitioner", **org_only), 403, "scope-missing")


def test_scope_decision_without_bearer_check_fails_closed(jwt_settings, client, jwt_keys):
    # The view decides on scopes; with no bearer check in the chain no token was verified, so
    # even a well-signed token in the header grants nothing.
    response = get(client, "/fhir/Organization", **bearer(sign(jwt_keys.ec_a)))
    assert_refused(response, 403, "scope-missing")


def test_token_never_reaches_the_logs(chain, client, jwt_keys, caplog):
    caplog.set_level(logging.DEBUG)
    for token in (sign(jwt_keys.ec_a), sign(jwt_keys.stray), sign(jwt_keys.ec_a, scope="openid")):
        get(client, "/fhir/Organization", **bearer(token))
        signature = token.rsplit(".", 1)[1]
        assert signature not in caplog.text
