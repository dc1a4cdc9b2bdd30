"""UDAP trusted dynamic client registration over real HTTP: a software statement signed with a
community certificate registers a client (audited), a certificate the mutual-TLS checks would
refuse (untrusted CA, expired, revoked) is refused, and the registered client gets a bound
token and reads the directory: register -> token -> /fhir."""

import base64
import secrets
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import ECKey

from security.models import ApiClient, CertificateIdentity, KeyEvent, TrustAnchor

from .conftest import LIVE_DB, secured_middleware, use_middleware
from .oauth_support import *  # noqa: F403  (fixtures)
from .oauth_support import BEARER_CHECK, assertion, fhir_get, post_token, token_form
from .pki import DAY, NOW, make_crl, make_leaf
from .trust import store_crl

pytestmark = LIVE_DB
URI = "https://apps.example.org/directory-sync"
API_KEY_CHECK = "security.middleware.api_key.ApiKeyMiddleware"


def udap_leaf(issuer, uri=URI, **dates):
    return make_leaf(issuer, "Directory Sync", ("sync.example.org",), uris=(uri,), **dates)


def x5c(*certs) -> list[str]:
    return [
        base64.b64encode(c.cert.public_bytes(serialization.Encoding.DER)).decode() for c in certs
    ]


def statement(server, leaf, chain=(), signer=None, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": URI,
        "sub": URI,
        "aud": f"{server}/oauth/register",
        "iat": now,
        "exp": now + 240,
        "jti": secrets.token_urlsafe(12),
        "client_name": "Directory Sync",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "system/*.rs",
        **overrides,
    }
    key = ECKey.import_key(signer or leaf.key)
    return jwt.encode({"alg": "ES256", "x5c": x5c(leaf, *chain)}, claims, key)


def register(server, software_statement: str, **body) -> requests.Response:
    payload = {"software_statement": software_statement, "udap": "1", **body}
    return requests.post(f"{server}/oauth/register", json=payload, timeout=10)


def refused(response, error: str):
    assert response.status_code == 400, response.text
    assert response.json() == {"error": error}
    assert not ApiClient.objects.filter(name="Directory Sync").exists()


@pytest.fixture
def leaf(pki):
    return udap_leaf(pki.a.intermediate)


def test_registration_creates_an_audited_client(oauth_server, trust_community, leaf, pki):
    response = register(oauth_server, statement(oauth_server, leaf, [pki.a.intermediate]))
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    client = ApiClient.objects.get(oauth_client_id=body["client_id"])
    assert client.name == body["client_name"] == "Directory Sync"
    assert client.community == trust_community
    assert client.udap_uri == URI
    assert body["scope"] == client.allowed_scopes == "system/*.rs"
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["api_key"].startswith("fdk_")
    assert CertificateIdentity.objects.get(client=client).value == leaf.fingerprint
    actions = set(KeyEvent.objects.filter(client=client).values_list("action", flat=True))
    assert actions == {"client-created", "oauth-keys-set", "identity-added", "key-issued"}
    assert KeyEvent.objects.filter(client=client).first().actor == "udap-registration"


def test_scope_is_limited_by_the_registration_setting(oauth_server, trust_community, leaf):
    response = register(oauth_server, statement(oauth_server, leaf, scope="system/*.cruds"))
    assert response.json()["scope"] == "system/*.rs"


def test_reregistration_updates_the_same_client(oauth_server, trust_community, leaf, pki):
    first = register(oauth_server, statement(oauth_server, leaf)).json()
    renewed = udap_leaf(pki.a.intermediate)  # a new certificate for the same software
    again = register(oauth_server, statement(oauth_server, renewed))
    assert again.status_code == 200, again.text
    assert again.json()["client_id"] == first["client_id"]
    assert "api_key" not in again.json()
    assert ApiClient.objects.filter(udap_uri=URI).count() == 1
    assert CertificateIdentity.objects.filter(value=renewed.fingerprint).exists()


def test_untrusted_ca_is_refused(oauth_server, trust_community, pki):
    stranger = udap_leaf(pki.unknown_root)
    refused(
        register(oauth_server, statement(oauth_server, stranger)), "unapproved_software_statement"
    )


def test_expired_certificate_is_refused(oauth_server, trust_community, pki):
    old = udap_leaf(pki.a.intermediate, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    refused(register(oauth_server, statement(oauth_server, old)), "unapproved_software_statement")


def test_revoked_certificate_is_refused(oauth_server, trust_community, pki):
    revoked = udap_leaf(pki.a.intermediate)
    anchor = TrustAnchor.objects.get(community=trust_community, kind=TrustAnchor.INTERMEDIATE)
    store_crl(anchor, make_crl(pki.a.intermediate, (revoked.cert.serial_number,)))
    refused(
        register(oauth_server, statement(oauth_server, revoked)), "unapproved_software_statement"
    )


def test_certificate_without_client_usage_is_refused(oauth_server, trust_community, pki):
    from cryptography.x509.oid import ExtendedKeyUsageOID

    server_only = make_leaf(
        pki.a.intermediate, "Sync", uris=(URI,), usages=(ExtendedKeyUsageOID.SERVER_AUTH,)
    )
    response = register(oauth_server, statement(oauth_server, server_only))
    refused(response, "unapproved_software_statement")


def test_signature_by_another_key_is_refused(oauth_server, trust_community, leaf, pki):
    forged = statement(oauth_server, leaf, signer=pki.valid.key)
    refused(register(oauth_server, forged), "invalid_software_statement")


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://elsewhere.example/oauth/register"},
        {"aud": ["{server}/oauth/register", "https://elsewhere.example/"]},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 800},
        {"exp": int(time.time()) + 3600},
        {"sub": "https://apps.example.org/other"},
    ],
)
def test_bad_claims_are_refused(oauth_server, trust_community, leaf, claims):
    if isinstance(claims.get("aud"), list):
        claims = {"aud": [aud.format(server=oauth_server) for aud in claims["aud"]]}
    refused(
        register(oauth_server, statement(oauth_server, leaf, **claims)),
        "invalid_software_statement",
    )


def test_iss_must_be_a_san_uri_of_the_certificate(oauth_server, trust_community, pki):
    other = udap_leaf(pki.a.intermediate, uri="https://apps.example.org/other")
    refused(register(oauth_server, statement(oauth_server, other)), "unapproved_software_statement")


@pytest.mark.parametrize(
    "claims",
    [
        {"grant_types": ["authorization_code"]},
        {"token_endpoint_auth_method": "client_secret_basic"},
        {"client_name": ""},
    ],
)
def test_unsupported_metadata_is_refused(oauth_server, trust_community, leaf, claims):
    refused(
        register(oauth_server, statement(oauth_server, leaf, **claims)), "invalid_client_metadata"
    )


def test_replayed_statement_is_refused(oauth_server, trust_community, leaf):
    once = statement(oauth_server, leaf)
    assert register(oauth_server, once).status_code == 201
    response = register(oauth_server, once)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_software_statement"}


def test_malformed_requests(oauth_server, trust_community, leaf):
    refused(
        register(oauth_server, statement(oauth_server, leaf), udap="2"), "invalid_client_metadata"
    )
    refused(register(oauth_server, "not.a.jwt"), "invalid_software_statement")
    text = requests.post(f"{oauth_server}/oauth/register", data="x", timeout=10)
    assert text.status_code == 400


def test_register_then_token_then_directory(
    oauth_server, trust_community, leaf, live_server, settings
):
    """End to end over HTTP: only the community certificate and key to begin with."""
    use_middleware(live_server, settings, secured_middleware([API_KEY_CHECK, BEARER_CHECK]))
    registered = register(oauth_server, statement(oauth_server, leaf)).json()
    kid = registered["jwks"]["keys"][0]["kid"]
    signed = assertion(leaf.key, registered["client_id"], kid=kid)
    response = post_token(oauth_server, token_form(signed), leaf)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    without_key = fhir_get(oauth_server, "Organization", token, leaf)
    assert without_key.status_code == 401  # the API key requirement stays for /fhir
    headers = {"X-API-Key": registered["api_key"]}
    found = fhir_get(oauth_server, "Organization", token, leaf, headers)
    assert found.status_code == 200, found.text
    assert found.json()["resourceType"] == "Bundle"
    assert found.headers["X-Test-Client"] == "Directory Sync"


@pytest.mark.django_db(transaction=True)  # every app: the admin needs auth and sessions
def test_registered_client_is_visible_in_the_admin(oauth_server, trust_community, leaf):
    from django.contrib.auth import get_user_model
    from django.test import Client

    registered = register(oauth_server, statement(oauth_server, leaf)).json()
    client = ApiClient.objects.get(oauth_client_id=registered["client_id"])
    browser = Client()
    browser.force_login(get_user_model().objects.create_superuser("root", password="x" * 20))
    page = browser.get(f"/admin/security/apiclient/{client.pk}/change/").content.decode()
    assert "Directory Sync" in page and registered["client_id"] in page and URI in page
