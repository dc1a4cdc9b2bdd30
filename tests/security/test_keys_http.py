"""The API key check over real HTTP: header, query string, refusals, client binding."""

import pytest
import requests
from django.test import override_settings

from security import keys
from security.context import context_of
from security.keys import issue_key, retire_key
from security.models import ApiClient
from security.refusal import REASONS
from tests.servers import reload_live_server_middleware

from .factories import ApiClientFactory

HEADERS_MIDDLEWARE = "security.middleware.headers.SecurityHeadersMiddleware"
SIMULATED_CERT = "tests.security.test_keys_http.SimulatedCertificateMiddleware"
API_KEY = "security.middleware.api_key.ApiKeyMiddleware"
ACTOR = "test:alice"
FHIR_JSON = "application/fhir+json"


class SimulatedCertificateMiddleware:
    """Test only: stands in for the certificate check, naming the client in X-Test-Cert-Client."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.headers.get("X-Test-Cert-Client")
        if name:
            context_of(request).client = ApiClient.objects.get(name=name)
        response = self.get_response(request)
        context = getattr(request, "security", None)
        if context is not None:
            response["X-Test-Outcome"] = context.outcome
            response["X-Test-Client"] = context.client.name if context.client else ""
            response["X-Test-Key-Prefix"] = context.key_prefix
        return response


@pytest.fixture
def server(live_server, settings):
    """The live server's FHIR base with the key check right after the security headers."""
    original = list(settings.MIDDLEWARE)
    rest = [m for m in original if m != HEADERS_MIDDLEWARE]
    settings.MIDDLEWARE = [HEADERS_MIDDLEWARE, SIMULATED_CERT, API_KEY, *rest]
    # The live server builds its chain once per session: rebuild it now and again afterwards.
    reload_live_server_middleware(live_server)
    keys.clear_cache()
    yield f"{live_server.url}/fhir"
    keys.clear_cache()
    with override_settings(MIDDLEWARE=original):
        reload_live_server_middleware(live_server)


@pytest.fixture
def issued(transactional_db):
    client = ApiClientFactory(name="Client A")
    key, plaintext = issue_key(client, ACTOR)
    return key, plaintext


def get(url, key=None, cert_client=None, params=None, headers=None):
    sent = {"Accept": FHIR_JSON, **(headers or {})}
    if key is not None:
        sent["X-API-Key"] = key
    if cert_client is not None:
        sent["X-Test-Cert-Client"] = cert_client
    return requests.get(url, params=params, headers=sent, timeout=10)


def assert_refused(response, code):
    reason = REASONS[code]
    assert response.status_code == reason.status
    assert response.headers["X-Test-Outcome"] == code
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"] == reason.message


def test_key_in_header_is_accepted(server, issued):
    key, plaintext = issued
    response = get(f"{server}/Practitioner", key=plaintext)
    assert response.status_code == 200
    assert response.json()["resourceType"] == "Bundle"
    assert response.headers["X-Test-Client"] == "Client A"
    assert response.headers["X-Test-Key-Prefix"] == key.prefix


def test_key_in_query_is_accepted_and_never_echoed(server, issued):
    _, plaintext = issued
    response = get(f"{server}/Practitioner", params={"name": "Smith", "apikey": plaintext})
    assert response.status_code == 200
    bundle = response.json()
    assert plaintext not in response.text
    assert "apikey" not in response.text
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "name=Smith" in self_link
    # The search did not see an unknown parameter, so it warns about nothing.
    assert not [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "outcome"]


def test_metadata_needs_no_key_and_never_sees_one(server, issued):
    _, plaintext = issued
    response = get(f"{server}/metadata")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "CapabilityStatement"
    with_key = get(f"{server}/metadata", params={"apikey": plaintext})
    assert with_key.status_code == 200
    assert plaintext not in with_key.text


def test_missing_key_is_refused(server, transactional_db):
    response = get(f"{server}/Practitioner")
    assert_refused(response, "key-missing")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_invalid_keys_are_refused(server, issued):
    key, plaintext = issued
    for presented in ["nonsense", "fdk_" + "a" * 10 + "_" + "b" * 43]:
        assert_refused(get(f"{server}/Practitioner", key=presented), "key-invalid")
    forged = plaintext[:-2] + ("xx" if not plaintext.endswith("xx") else "yy")
    response = get(f"{server}/Practitioner", key=forged)
    assert_refused(response, "key-invalid")
    assert response.headers["X-Test-Key-Prefix"] == key.prefix  # operators see what was tried


def test_retired_key_is_refused(server, issued):
    key, plaintext = issued
    assert get(f"{server}/Practitioner", key=plaintext).status_code == 200
    retire_key(key, ACTOR, "compromised")
    assert_refused(get(f"{server}/Practitioner", key=plaintext), "key-invalid")


def test_header_and_query_must_agree(server, issued):
    _, plaintext = issued
    other = ApiClientFactory(name="Client B")
    _, other_plaintext = issue_key(other, ACTOR)
    url = f"{server}/Practitioner"
    differing = get(url, key=plaintext, params={"apikey": other_plaintext})
    assert_refused(differing, "key-invalid")
    assert get(url, key=plaintext, params={"apikey": plaintext}).status_code == 200
    _, second = issue_key(ApiClient.objects.get(name="Client A"), ACTOR)
    two_in_query = get(url, params=[("apikey", plaintext), ("apikey", second)])
    assert_refused(two_in_query, "key-invalid")


def test_key_must_belong_to_the_certificate_client(server, issued):
    _, plaintext = issued
    ApiClientFactory(name="Client B")
    response = get(f"{server}/Practitioner", key=plaintext, cert_client="Client B")
    assert_refused(response, "key-wrong-client")
    response = get(f"{server}/Practitioner", key=plaintext, cert_client="Client A")
    assert response.status_code == 200
    assert response.headers["X-Test-Client"] == "Client A"


def test_suspended_client_is_refused(server, issued):
    key, plaintext = issued
    ApiClient.objects.filter(pk=key.client_id).update(status=ApiClient.SUSPENDED)
    assert_refused(get(f"{server}/Practitioner", key=plaintext), "client-suspended")


def test_use_is_recorded_with_the_address(server, issued):
    key, plaintext = issued
    assert get(f"{server}/Practitioner", key=plaintext).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert key.last_used_ip == "127.0.0.1"


def test_verification_errors_fail_closed(server, issued, monkeypatch, caplog):
    _, plaintext = issued

    def broken(presented):
        raise RuntimeError(f"database gone while checking {presented}")

    monkeypatch.setattr("security.middleware.api_key.verify_key", broken)
    response = get(f"{server}/Practitioner", key=plaintext)
    assert_refused(response, "key-invalid")
    assert plaintext not in caplog.text
    assert "RuntimeError" in caplog.text
