"""Built-in authorization server tests: a live server with it on, clients with keys, assertions.

Every request goes over real HTTP to the live server, with the certificate headers the TLS
terminator would set (tests/security/pki.py).
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from security.oauth import config

from .conftest import secured_middleware, use_middleware
from .pki import Issued, http_headers

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
BEARER_CHECK = "security.middleware.bearer.BearerTokenMiddleware"
JSON_FHIR = "application/fhir+json"


@pytest.fixture
def oauth_server(live_server, settings):
    """The live server's URL: proxy, certificate and bearer checks on, authorization server on."""
    settings.ENVIRONMENT = "test"
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    settings.SECURITY_CLIENT_CERT_FORMAT = "nginx"
    settings.SECURITY_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]
    settings.SECURITY_REQUIRE_BEARER = True
    settings.SECURITY_JWT_ISSUERS_FILE = ""
    settings.OAUTH_SERVER_URL = live_server.url
    settings.OAUTH_ACCESS_TOKEN_LIFETIME = 300
    restore = use_middleware(live_server, settings, secured_middleware([BEARER_CHECK]))
    yield live_server.url
    restore()


def jwk_of(issued: Issued, kid: str) -> ECKey:
    return ECKey.import_key(issued.key, parameters={"kid": kid})


def enable_oauth(client, issued: Issued, kid: str = "key-1", scopes: str = "system/*.rs"):
    """Give `client` a client_id (its name, slugged) and `issued`'s public key as its JWKS."""
    from security import clients

    client.allowed_scopes = scopes
    client.save(update_fields=["allowed_scopes"])
    jwks = json.dumps(KeySet([jwk_of(issued, kid)]).as_dict(private=False))
    client_id = client.name.lower().replace(" ", "-")
    return clients.set_oauth_credentials(client, client_id, jwks, actor="tests")


def assertion(
    key, client_id: str, alg: str = "ES256", kid: str | None = "key-1", lifetime=240, **claims
) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": config.token_endpoint(),
        "exp": now + lifetime,
        "iat": now,
        "jti": secrets.token_urlsafe(12),
        **claims,
    }
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    if not isinstance(key, ECKey | RSAKey):
        key = ECKey.import_key(key)
    return jwt.encode(header, body, key, algorithms=[alg])


def token_form(client_assertion: str, scope: str = "system/*.rs", **overrides) -> dict:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **overrides,
    }


def post_token(server: str, form: dict, cert=None, **kwargs) -> requests.Response:
    headers = http_headers(cert) if cert is not None else {}
    return requests.post(f"{server}/oauth/token", data=form, headers=headers, timeout=10, **kwargs)


def get_token(server: str, issued: Issued, client_id: str, scope: str = "system/*.rs") -> str:
    response = post_token(server, token_form(assertion(issued.key, client_id), scope), issued)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def fhir_get(server: str, path: str, token: str, cert=None, extra=None) -> requests.Response:
    headers = {"Accept": JSON_FHIR, "Authorization": f"Bearer {token}", **(extra or {})}
    if cert is not None:
        headers.update(http_headers(cert))
    return requests.get(f"{server}/fhir/{path}", headers=headers, timeout=10)


def claims_of(token: str) -> dict:
    """The payload of a JWS, unverified (the tests read what the server put in)."""
    import base64

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
