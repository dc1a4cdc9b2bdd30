"""Certificate-bound tokens (RFC 8705) on /fhir over real HTTP: a token of the built-in server
works only with the certificate of the request that got it."""

import pytest

from security.oauth import issuance
from security.trust.certificates import x5t_s256

from .conftest import LIVE_DB
from .oauth_support import *  # noqa: F403  (fixtures)
from .oauth_support import claims_of, enable_oauth, fhir_get, get_token
from .pki import CLIENT_A_DNS, make_leaf

pytestmark = LIVE_DB


@pytest.fixture
def client_a(cert_client, pki):
    return enable_oauth(cert_client, pki.valid)


def test_bound_token_works_with_its_certificate(oauth_server, client_a, pki):
    token = get_token(oauth_server, pki.valid, "client-a")
    assert claims_of(token)["cnf"]["x5t#S256"] == x5t_s256(pki.valid.cert)
    response = fhir_get(oauth_server, "Organization", token, pki.valid)
    assert response.status_code == 200, response.text
    assert response.headers["X-Test-Client"] == "Client A"


def test_bound_token_with_another_certificate_of_the_same_client_is_refused(
    oauth_server, client_a, pki
):
    # Same community, same SAN: identifies Client A for mutual TLS, but it is another certificate.
    second = make_leaf(pki.a.intermediate, "Client A (second)", (CLIENT_A_DNS,))
    assert fhir_get(oauth_server, "metadata", "", second).status_code == 200
    token = get_token(oauth_server, pki.valid, "client-a")
    response = fhir_get(oauth_server, "Organization", token, second)
    assert response.status_code == 401
    assert response.headers["X-Test-Outcome"] == "token-invalid"


def test_bound_token_with_another_clients_certificate_is_refused(
    oauth_server, client_a, cert_client_b, pki
):
    token = get_token(oauth_server, pki.valid, "client-a")
    response = fhir_get(oauth_server, "Organization", token, pki.valid_b)
    assert response.status_code == 401
    assert response.headers["X-Test-Outcome"] == "token-invalid"


def test_builtin_token_without_cnf_is_refused_with_a_certificate(oauth_server, client_a, pki):
    unbound = issuance.issue(client_a, ["system/*.rs"], certificate=None)["access_token"]
    response = fhir_get(oauth_server, "Organization", unbound, pki.valid)
    assert response.status_code == 401
    assert response.headers["X-Test-Outcome"] == "token-invalid"


def test_external_issuer_token_without_cnf_keeps_working(
    oauth_server, client_a, pki, settings, token_issuer
):
    settings.SECURITY_JWT_ISSUERS_FILE = token_issuer.issuers_file
    response = fhir_get(oauth_server, "Organization", token_issuer.mint("system/*.rs"), pki.valid)
    assert response.status_code == 200, response.text


def test_external_token_with_cnf_of_another_certificate_is_refused(
    oauth_server, client_a, pki, settings, token_issuer
):
    settings.SECURITY_JWT_ISSUERS_FILE = token_issuer.issuers_file
    other = x5t_s256(pki.valid_b.cert)
    token = token_issuer.mint("system/*.rs", cnf={"x5t#S256": other})
    assert fhir_get(oauth_server, "Organization", token, pki.valid).status_code == 401
    mine = token_issuer.mint("system/*.rs", cnf={"x5t#S256": x5t_s256(pki.valid.cert)})
    assert fhir_get(oauth_server, "Organization", mine, pki.valid).status_code == 200


def test_token_scopes_still_apply(oauth_server, client_a, pki):
    token = get_token(oauth_server, pki.valid, "client-a", scope="system/Organization.rs")
    assert fhir_get(oauth_server, "Organization", token, pki.valid).status_code == 200
    assert fhir_get(oauth_server, "Practitioner", token, pki.valid).status_code == 403


def test_builtin_tokens_verify_whatever_external_algorithms_are_configured(
    oauth_server, client_a, pki, settings
):
    settings.SECURITY_JWT_ALGORITHMS = ["RS256"]
    token = get_token(oauth_server, pki.valid, "client-a")
    assert fhir_get(oauth_server, "Organization", token, pki.valid).status_code == 200
