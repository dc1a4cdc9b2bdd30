"""A registered directory client with real credentials: certificate, API key and bearer token.

The whole suite talks to the API the way production clients do, through every security check.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from security import clients, keys
from tests.logcapture import ISSUED
from tests.security.pki import CLIENT_A_DNS, PKI, cert_headers, http_headers

ISSUER = "https://auth.directory-tests.example/"
AUDIENCE = "https://directory-tests.example/fhir"
ALL_SCOPES = "system/*.cruds"


@dataclass(frozen=True)
class TokenIssuer:
    key: ECKey
    issuers_file: str

    def mint(self, scope: str = ALL_SCOPES, lifetime: int = 600, **claims) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "directory-test-client",
            "iat": now,
            "exp": now + lifetime,
            "scope": scope,
            **claims,
        }
        token = jwt.encode({"alg": "ES256", "kid": self.key.kid}, body, self.key)
        ISSUED.add(token)
        return token


def make_token_issuer(directory) -> TokenIssuer:
    """An ES256 issuer: private key in memory, JWKS and issuers file written under `directory`."""
    key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()), parameters={"kid": "tests"})
    (directory / "jwks.json").write_text(json.dumps(KeySet([key]).as_dict(private=False)))
    issuers = [{"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "jwks.json"}]
    (directory / "issuers.json").write_text(json.dumps(issuers))
    return TokenIssuer(key, str(directory / "issuers.json"))


@dataclass(frozen=True)
class Credentials:
    client_name: str
    api_key: str
    token: str
    meta: dict  # WSGI environ keys, for Django's test client
    http: dict  # header names, for requests and FHIR client libraries


def register_directory_client(pki: PKI, issuer: TokenIssuer, community) -> Credentials:
    """Client A of the test PKI, allowed every directory scope, with a fresh key and token."""
    return register_client(issuer, community, pki.valid, CLIENT_A_DNS, "Directory test client")


def register_client(issuer: TokenIssuer, community, leaf, dns: str, name: str) -> Credentials:
    """A client identified by `leaf` (SAN `dns`), allowed every directory scope."""
    client = clients.create_client(
        name,
        organization="Test Health",
        community=community,
        allowed_scopes=ALL_SCOPES,
        actor="tests",
    )
    clients.add_identity(client, "dns", value=dns, actor="tests")
    _, api_key = keys.issue_key(client, actor="tests")
    token = issuer.mint()
    http = {**http_headers(leaf), "X-API-Key": api_key, "Authorization": f"Bearer {token}"}
    meta = {
        **cert_headers(leaf),
        "HTTP_X_API_KEY": api_key,
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }
    return Credentials(client.name, api_key, token, meta, http)
