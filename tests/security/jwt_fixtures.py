"""Keys, issuers and token builders for the bearer-token, scope and Spine tests.

Two issuers: ISSUER_A with an RSA-2048 and an EC P-256 key, ISSUER_B with its own EC key, and a
stray EC key no issuer knows. Keys are generated once per session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from security.context import context_of
from security.models import ApiClient
from security.tokens import clear_issuer_cache
from tests.servers import reload_live_server_middleware

# The fixtures; test modules take them with `from .jwt_fixtures import *`.
__all__ = ["chain", "issuers_file", "jwt_keys", "jwt_settings", "live_chain"]

ISSUER_A = "https://auth-a.example/"
AUDIENCE_A = "https://directory.example/fhir"
ISSUER_B = "https://auth-b.example/"
AUDIENCE_B = "urn:directory:b"

CHAIN = [
    "security.middleware.spine.SpineHeadersMiddleware",
    "security.middleware.bearer.BearerTokenMiddleware",
]
# Test-only stand-in for the client check that runs earlier in the real chain.
TEST_CLIENT_HEADER = "X-Test-Client"
FAKE_CLIENT_CHECK = "tests.security.jwt_fixtures.FakeClientMiddleware"


@dataclass(frozen=True)
class Keys:
    rsa_a: RSAKey
    ec_a: ECKey
    ec_b: ECKey
    stray: ECKey
    rsa_a_public_pem: bytes


def _rsa(kid: str) -> RSAKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RSAKey.import_key(private, parameters={"kid": kid})


def _ec(kid: str) -> ECKey:
    return ECKey.import_key(ec.generate_private_key(ec.SECP256R1()), parameters={"kid": kid})


@pytest.fixture(scope="session")
def jwt_keys() -> Keys:
    rsa_a = _rsa("rsa-a")
    public_pem = rsa_a.raw_value.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Keys(rsa_a, _ec("ec-a"), _ec("ec-b"), _ec("stray"), public_pem)


@pytest.fixture(scope="session")
def issuers_file(jwt_keys, tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("jwt-issuers")
    write_jwks(directory / "a.json", [jwt_keys.rsa_a, jwt_keys.ec_a])
    write_jwks(directory / "b.json", [jwt_keys.ec_b])
    entries = [
        {"issuer": ISSUER_A, "audience": AUDIENCE_A, "jwks_file": "a.json"},
        {"issuer": ISSUER_B, "audience": AUDIENCE_B, "jwks_file": str(directory / "b.json")},
    ]
    path = directory / "issuers.json"
    path.write_text(json.dumps(entries))
    return str(path)


def write_jwks(path, keys) -> None:
    path.write_text(json.dumps(KeySet(keys).as_dict(private=False)))


@pytest.fixture
def jwt_settings(settings, issuers_file):
    """Bearer tokens required, both scope conventions, Spine off; no middleware enabled."""
    settings.SECURITY_JWT_ISSUERS_FILE = issuers_file
    settings.SECURITY_JWT_ALGORITHMS = ["RS256", "ES256"]
    settings.SECURITY_JWT_LEEWAY_SECONDS = 60
    settings.SECURITY_JWT_MAX_LIFETIME_SECONDS = 3600
    settings.SECURITY_REQUIRE_BEARER = True
    settings.SECURITY_SCOPE_CONVENTION = "both"
    settings.SECURITY_SPINE_PROFILE = False
    settings.SECURITY_SPINE_ASID = "200000000123"
    clear_issuer_cache()
    yield settings
    clear_issuer_cache()


@pytest.fixture
def chain(jwt_settings):
    """The Spine, bearer and scope checks (after the fake client check) in the middleware."""
    jwt_settings.MIDDLEWARE = [*jwt_settings.MIDDLEWARE, FAKE_CLIENT_CHECK, *CHAIN]
    return jwt_settings


class FakeClientMiddleware:
    """Sets context.client from a test header, as the certificate/API-key checks would."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.headers.get(TEST_CLIENT_HEADER)
        if name:
            context_of(request).client = ApiClient.objects.get(name=name)
        return self.get_response(request)


def claims(**overrides) -> dict:
    """Valid claims for issuer A, five minutes to live; None as a value drops the claim."""
    now = int(time.time())
    base = {
        "iss": ISSUER_A,
        "aud": AUDIENCE_A,
        "sub": "system-under-test",
        "iat": now,
        "exp": now + 300,
        "scope": "system/*.read",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(key, alg: str = "ES256", kid: str | None = "use-key", **claim_overrides) -> str:
    """A token signed with `key`; kid defaults to the key's own."""
    header = {"alg": alg}
    kid = key.kid if kid == "use-key" else kid
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(header, claims(**claim_overrides), key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(alg: str = "none", **claim_overrides) -> str:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims(**claim_overrides)).encode())}."


def hs256_with_secret(secret: bytes, kid: str | None = None, **claim_overrides) -> str:
    """An HS256 token MACed with `secret`, built by hand as an attacker would."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(**claim_overrides)).encode())}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def live_chain(live_server, chain):
    """The live server with the checks enabled; its handlers are rebuilt, then restored."""
    original = chain.MIDDLEWARE[: -(len(CHAIN) + 1)]  # as `chain` found it: appended at the end
    reload_live_server_middleware(live_server)
    yield live_server
    chain.MIDDLEWARE = original
    reload_live_server_middleware(live_server)
