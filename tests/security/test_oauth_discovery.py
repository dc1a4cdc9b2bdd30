"""Discovery over real HTTP: SMART configuration and UDAP metadata signed with the server's
certificate, at the root and under the FHIR base."""

import base64

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import ECKey

from security.oauth import discovery
from security.oauth.registration import X5cRegistry

from .conftest import LIVE_DB
from .oauth_support import *  # noqa: F403  (fixtures)
from .pki import http_headers

pytestmark = LIVE_DB


@pytest.fixture
def udap_files(settings, pki, tmp_path):
    """The server's certificate (leaf, then its issuing CA) and key, as an operator configures."""
    cert_file, key_file = tmp_path / "server.chain.pem", tmp_path / "server.key.pem"
    cert_file.write_text(pki.server.pem + pki.a.intermediate.pem)
    key_file.write_bytes(
        pki.server.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    settings.OAUTH_UDAP_CERTIFICATE_FILE = str(cert_file)
    settings.OAUTH_UDAP_KEY_FILE = str(key_file)
    discovery._server_credentials.cache_clear()
    yield
    discovery._server_credentials.cache_clear()


def get(server, path, cert=None):
    return requests.get(f"{server}{path}", headers=http_headers(cert) if cert else {}, timeout=10)


@pytest.mark.parametrize(
    "path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"]
)
def test_smart_configuration(oauth_server, cert_client, path, pki):
    body = get(oauth_server, path, pki.valid).json()
    assert body["token_endpoint"] == f"{oauth_server}/oauth/token"
    assert body["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert body["token_endpoint_auth_signing_alg_values_supported"] == [
        "RS256",
        "ES256",
        "RS384",
        "ES384",
    ]
    assert body["grant_types_supported"] == ["client_credentials"]
    assert "client-confidential-asymmetric" in body["capabilities"]
    assert "system/*.rs" in body["scopes_supported"]
    assert body["jwks_uri"] == f"{oauth_server}/oauth/jwks"


def test_under_the_fhir_base_with_a_certificate_and_no_key_or_token(oauth_server, cert_client, pki):
    response = get(oauth_server, "/fhir/.well-known/smart-configuration", pki.valid)
    assert response.status_code == 200, response.text
    assert response.json()["token_endpoint"] == f"{oauth_server}/oauth/token"
    # Still behind the transport checks, like /fhir/metadata.
    refused = get(oauth_server, "/fhir/.well-known/smart-configuration", pki.unknown_leaf)
    assert refused.status_code == 403


def test_udap_metadata_is_signed_by_the_server_certificate(
    oauth_server, cert_client, udap_files, pki
):
    body = get(oauth_server, "/fhir/.well-known/udap", pki.valid).json()
    assert body["udap_versions_supported"] == ["1"]
    assert body["registration_endpoint"] == f"{oauth_server}/oauth/register"
    assert body["token_endpoint"] == f"{oauth_server}/oauth/token"
    token = jwt.decode(
        body["signed_metadata"],
        ECKey.import_key(pki.server.key.public_key()),
        registry=X5cRegistry(algorithms=["ES256"]),
    )
    claims = token.claims
    assert claims["iss"] == claims["sub"] == f"{oauth_server}/fhir"
    assert claims["token_endpoint"] == body["token_endpoint"]
    assert claims["registration_endpoint"] == body["registration_endpoint"]
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    x5c = token.header["x5c"]
    leaf = x509.load_der_x509_certificate(base64.b64decode(x5c[0]))
    assert leaf == pki.server.cert
    assert x509.load_der_x509_certificate(base64.b64decode(x5c[1])) == pki.a.intermediate.cert
    assert get(oauth_server, "/.well-known/udap").status_code == 200


def test_udap_needs_the_server_certificate(oauth_server):
    assert get(oauth_server, "/.well-known/udap").status_code == 404


def test_everything_off_without_server_url(oauth_server, settings):
    settings.OAUTH_SERVER_URL = ""
    for path in ("/.well-known/smart-configuration", "/oauth/jwks", "/.well-known/udap"):
        assert get(oauth_server, path).status_code == 404
