"""The token endpoint over real HTTP: the SMART Backend Services conformance cases (bad
grant_type and client_assertion_type, invalid, expired, replayed and wrong-audience assertions,
unknown kid, algorithms) and the success response; plus the mutual-TLS certificate it needs."""

import json
import time

import pytest
import requests
from joserfc.jwk import ECKey

from security.models import KeyEvent

from .conftest import LIVE_DB
from .oauth_support import *  # noqa: F403  (fixtures)
from .oauth_support import (
    assertion,
    claims_of,
    enable_oauth,
    jwk_of,
    post_token,
    token_form,
)

pytestmark = LIVE_DB


@pytest.fixture
def client_a(cert_client, pki):
    return enable_oauth(cert_client, pki.valid)


def refused(response, error: str, status: int = 400):
    assert response.status_code == status, response.text
    assert response.json() == {"error": error}
    assert response.headers["Cache-Control"] == "no-store"
    return response


def test_success_returns_a_bound_short_lived_token(oauth_server, client_a, pki):
    response = post_token(oauth_server, token_form(assertion(pki.valid.key, "client-a")), pki.valid)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "system/*.rs"
    claims = claims_of(body["access_token"])
    assert claims["iss"] == f"{oauth_server}/oauth"
    assert claims["aud"] == f"{oauth_server}/fhir"
    assert claims["sub"] == "client-a"
    assert claims["exp"] - claims["iat"] == 300
    assert set(claims["cnf"]) == {"x5t#S256"}


def test_lifetime_setting_is_capped_at_five_minutes(oauth_server, client_a, pki, settings):
    settings.OAUTH_ACCESS_TOKEN_LIFETIME = 3600
    response = post_token(oauth_server, token_form(assertion(pki.valid.key, "client-a")), pki.valid)
    assert response.json()["expires_in"] == 300
    settings.OAUTH_ACCESS_TOKEN_LIFETIME = 60
    response = post_token(oauth_server, token_form(assertion(pki.valid.key, "client-a")), pki.valid)
    assert response.json()["expires_in"] == 60


def test_bad_grant_type(oauth_server, client_a, pki):
    form = token_form(assertion(pki.valid.key, "client-a"), grant_type="password")
    refused(post_token(oauth_server, form, pki.valid), "unsupported_grant_type")


def test_bad_client_assertion_type(oauth_server, client_a, pki):
    form = token_form(
        assertion(pki.valid.key, "client-a"),
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
    )
    refused(post_token(oauth_server, form, pki.valid), "invalid_client", 401)


@pytest.mark.parametrize("missing", ["grant_type", "client_assertion", "scope"])
def test_missing_parameter(oauth_server, client_a, pki, missing):
    form = token_form(assertion(pki.valid.key, "client-a"))
    del form[missing]
    refused(post_token(oauth_server, form, pki.valid), "invalid_request")


def test_json_body_is_not_a_token_request(oauth_server, client_a, pki):
    form = token_form(assertion(pki.valid.key, "client-a"))
    response = requests.post(
        f"{oauth_server}/oauth/token", json=form, headers=_cert(pki), timeout=10
    )
    refused(response, "invalid_request")


def test_assertion_signed_by_another_key(oauth_server, client_a, pki):
    forged = assertion(pki.valid_b.key, "client-a")
    refused(post_token(oauth_server, token_form(forged), pki.valid), "invalid_client", 401)


def test_garbage_assertion(oauth_server, client_a, pki):
    refused(post_token(oauth_server, token_form("a.b.c"), pki.valid), "invalid_client", 401)


def test_expired_assertion(oauth_server, client_a, pki):
    old = int(time.time()) - 900
    expired = assertion(pki.valid.key, "client-a", iat=old, exp=old + 240)
    refused(post_token(oauth_server, token_form(expired), pki.valid), "invalid_client", 401)


def test_assertion_valid_for_more_than_five_minutes(oauth_server, client_a, pki):
    long = assertion(pki.valid.key, "client-a", lifetime=600)
    refused(post_token(oauth_server, token_form(long), pki.valid), "invalid_client", 401)


def test_replayed_assertion(oauth_server, client_a, pki):
    once = assertion(pki.valid.key, "client-a")
    assert post_token(oauth_server, token_form(once), pki.valid).status_code == 200
    refused(post_token(oauth_server, token_form(once), pki.valid), "invalid_client", 401)


@pytest.mark.parametrize(
    "audience",
    [
        "https://elsewhere.example/oauth/token",
        "{server}/oauth/token/",
        ["{server}/oauth/token", "https://elsewhere.example/"],
    ],
)
def test_wrong_audience(oauth_server, client_a, pki, audience):
    aud = (
        [a.format(server=oauth_server) for a in audience]
        if isinstance(audience, list)
        else audience.format(server=oauth_server)
    )
    wrong = assertion(pki.valid.key, "client-a", aud=aud)
    refused(post_token(oauth_server, token_form(wrong), pki.valid), "invalid_client", 401)


def test_unknown_kid(oauth_server, client_a, pki):
    unknown = assertion(pki.valid.key, "client-a", kid="no-such-key")
    refused(post_token(oauth_server, token_form(unknown), pki.valid), "invalid_client", 401)


def test_unknown_client_id(oauth_server, client_a, pki):
    stranger = assertion(pki.valid.key, "someone-else")
    refused(post_token(oauth_server, token_form(stranger), pki.valid), "invalid_client", 401)


def test_sub_must_equal_iss(oauth_server, client_a, pki):
    odd = assertion(pki.valid.key, "client-a", sub="someone-else")
    refused(post_token(oauth_server, token_form(odd), pki.valid), "invalid_client", 401)


def test_algorithm_outside_the_four_is_refused(oauth_server, client_a, pki):
    from cryptography.hazmat.primitives.asymmetric import ec

    p521 = ECKey.import_key(ec.generate_private_key(ec.SECP521R1()), parameters={"kid": "key-1"})
    es512 = assertion(p521, "client-a", alg="ES512")
    refused(post_token(oauth_server, token_form(es512), pki.valid), "invalid_client", 401)


def test_unsigned_assertion_is_refused(oauth_server, client_a, pki):
    from .jwt_fixtures import unsigned

    none = unsigned(iss="client-a", sub="client-a", aud=f"{oauth_server}/oauth/token", jti="n")
    refused(post_token(oauth_server, token_form(none), pki.valid), "invalid_client", 401)


def test_rsa_assertion_accepted(oauth_server, client_a, pki):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    from security import clients

    rsa_key = RSAKey.import_key(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), parameters={"kid": "rsa"}
    )
    jwks = json.dumps({"keys": [rsa_key.as_dict(private=False)]})
    clients.set_oauth_credentials(client_a, "client-a", jwks, actor="tests")
    for alg in ("RS256", "RS384"):
        signed = assertion(rsa_key, "client-a", alg=alg, kid="rsa")
        assert post_token(oauth_server, token_form(signed), pki.valid).status_code == 200


def test_scopes_are_the_intersection(oauth_server, client_a, pki):
    form = token_form(
        assertion(pki.valid.key, "client-a"),
        scope="system/Organization.read system/*.cruds patient/*.read openid",
    )
    body = post_token(oauth_server, form, pki.valid).json()
    assert body["scope"] == "system/Organization.read system/*.rs"


def test_no_allowed_scope(oauth_server, client_a, pki):
    form = token_form(assertion(pki.valid.key, "client-a"), scope="system/Organization.c")
    refused(post_token(oauth_server, form, pki.valid), "invalid_scope")


def test_certificate_is_required(oauth_server, client_a, pki):
    form = token_form(assertion(pki.valid.key, "client-a"))
    refused(post_token(oauth_server, form), "invalid_client", 401)


def test_untrusted_certificate_is_refused(oauth_server, client_a, pki):
    form = token_form(assertion(pki.valid.key, "client-a"))
    refused(post_token(oauth_server, form, pki.unknown_leaf), "invalid_client", 401)


def test_certificate_of_another_client_is_refused(oauth_server, client_a, cert_client_b, pki):
    form = token_form(assertion(pki.valid.key, "client-a"))
    refused(post_token(oauth_server, form, pki.valid_b), "invalid_client", 401)


def test_forged_certificate_header_from_untrusted_peer(oauth_server, client_a, pki, settings):
    settings.SECURITY_TRUSTED_PROXIES = ["10.9.9.9/32"]
    form = token_form(assertion(pki.valid.key, "client-a"))
    refused(post_token(oauth_server, form, pki.valid), "invalid_client", 401)


def test_suspended_client_is_refused(oauth_server, client_a, pki):
    from security import clients

    clients.suspend_client(client_a, actor="tests")
    form = token_form(assertion(pki.valid.key, "client-a"))
    refused(post_token(oauth_server, form, pki.valid), "invalid_client", 401)


def test_no_api_key_or_bearer_needed_and_get_not_allowed(oauth_server, client_a, pki):
    response = requests.get(f"{oauth_server}/oauth/token", headers=_cert(pki), timeout=10)
    assert response.status_code == 405


def test_off_without_server_url(oauth_server, client_a, pki, settings):
    settings.OAUTH_SERVER_URL = ""
    form = token_form(assertion(pki.valid.key, "client-a"))
    assert post_token(oauth_server, form, pki.valid).status_code == 404


def test_registered_keys_are_public_only(client_a, pki):
    from security import clients

    private = json.dumps({"keys": [jwk_of(pki.valid, "k").as_dict(private=True)]})
    with pytest.raises(clients.ClientError):
        clients.set_oauth_credentials(client_a, "client-a", private, actor="tests")
    assert KeyEvent.objects.filter(action="oauth-keys-set").count() == 1


def _cert(pki):
    from .pki import http_headers

    return http_headers(pki.valid)
