"""What a client of the built-in server signs: the client assertion (SMART Backend Services)
and the UDAP software statement. For the demo, the README's walk-through and clients' scripts;
the server itself never holds a client's private key."""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from ..trust.certificates import der, load_pem_certificates
from . import config

ASSERTION_SECONDS = 240


def load_signing_key(path: str) -> tuple[ECKey | RSAKey, str]:
    """(joserfc key, algorithm) of a PEM key: P-256 ES256, P-384 ES384, RSA RS256."""
    private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if isinstance(private, rsa.RSAPrivateKey):
        return RSAKey.import_key(private), "RS256"
    curve = private.curve.name if isinstance(private, ec.EllipticCurvePrivateKey) else ""
    algorithm = {"secp256r1": "ES256", "secp384r1": "ES384"}.get(curve)
    if algorithm is None or not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError("the key must be RSA, EC P-256 or EC P-384")
    return ECKey.import_key(private), algorithm


def _claims(issuer: str, audience: str, **extra: Any) -> dict:
    now = int(time.time())
    return {
        "iss": issuer,
        "sub": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_SECONDS,
        "jti": secrets.token_urlsafe(16),
        **extra,
    }


def client_assertion(key_file: str, client_id: str, token_url: str, kid: str = "") -> str:
    key, algorithm = load_signing_key(key_file)
    header = {"alg": algorithm, **({"kid": kid} if kid else {})}
    return jwt.encode(header, _claims(client_id, token_url), key, algorithms=[algorithm])


def software_statement(
    cert_file: str, key_file: str, uri: str, name: str, registration_url: str, scope: str
) -> str:
    """A UDAP software statement signed with the certificate's key, its chain in x5c."""
    key, algorithm = load_signing_key(key_file)
    chain = load_pem_certificates(Path(cert_file).read_bytes())
    x5c = [base64.b64encode(der(c)).decode() for c in chain]
    claims = _claims(
        uri,
        registration_url,
        client_name=name,
        grant_types=[config.CLIENT_CREDENTIALS],
        token_endpoint_auth_method=config.AUTH_METHOD,
        scope=scope,
    )
    return jwt.encode({"alg": algorithm, "x5c": x5c}, claims, key, algorithms=[algorithm])
