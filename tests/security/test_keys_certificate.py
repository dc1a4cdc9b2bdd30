"""The key check behind the real certificate check: the key must belong to the certificate's
client. Uses the shared test PKI and live-server helpers from tests/security/conftest.py."""

import pytest
import requests

from security import keys
from security.keys import issue_key

from .conftest import secured_middleware, use_middleware
from .pki import http_headers

API_KEY = "security.middleware.api_key.ApiKeyMiddleware"
ACTOR = "test:alice"


@pytest.fixture
def keyed_cert_server(live_server, settings):
    """Proxy, certificate and key checks on, certificates required."""
    settings.ENVIRONMENT = "test"
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    settings.SECURITY_CLIENT_CERT_FORMAT = "nginx"
    settings.SECURITY_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]
    restore = use_middleware(live_server, settings, secured_middleware([API_KEY]))
    keys.clear_cache()
    yield f"{live_server.url}/fhir"
    keys.clear_cache()
    restore()


def search(server, cert, key):
    headers = {**http_headers(cert), "Accept": "application/fhir+json", "X-API-Key": key}
    return requests.get(f"{server}/Practitioner", headers=headers, timeout=10)


def test_key_of_the_certificate_client_is_accepted(keyed_cert_server, cert_client, pki):
    _, plaintext = issue_key(cert_client, ACTOR)
    response = search(keyed_cert_server, pki.valid, plaintext)
    assert response.status_code == 200, response.text
    assert response.headers["X-Test-Outcome"] == "ok"
    assert response.headers["X-Test-Client"] == "Client A"


def test_key_of_another_client_is_refused(keyed_cert_server, cert_client, cert_client_b, pki):
    _, plaintext_b = issue_key(cert_client_b, ACTOR)
    response = search(keyed_cert_server, pki.valid, plaintext_b)
    assert response.headers["X-Test-Outcome"] == "key-wrong-client"
    # Told apart in the audit only: to the client, another client's live key looks exactly like
    # a key that does not exist, so a stolen key cannot be confirmed.
    unknown = search(keyed_cert_server, pki.valid, "fdk_" + "x" * 40)
    assert unknown.headers["X-Test-Outcome"] == "key-invalid"
    assert (response.status_code, response.json()) == (unknown.status_code, unknown.json())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]
