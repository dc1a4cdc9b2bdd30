"""Access tokens of the built-in server: short-lived JWTs (RFC 9068), ES256, bound to the
client certificate of the token request when there was one (RFC 8705 `cnf.x5t#S256`)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from cryptography import x509
from joserfc import jwt

from ..models import ApiClient
from ..trust.certificates import x5t_s256
from . import config, signing


def issue(
    client: ApiClient, scopes: list[str], certificate: x509.Certificate | None
) -> dict[str, Any]:
    """The token response body (RFC 6749 §5.1) for `client`, granting `scopes`."""
    lifetime = config.access_token_lifetime()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": config.issuer(),
        "sub": client.oauth_client_id,
        "client_id": client.oauth_client_id,
        "aud": config.audience(),
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
        "scope": " ".join(scopes),
    }
    if certificate is not None:
        claims["cnf"] = {"x5t#S256": x5t_s256(certificate)}
    key = signing.current_key()
    header = {"alg": config.TOKEN_ALGORITHM, "kid": key.kid, "typ": "at+jwt"}
    return {
        "access_token": jwt.encode(header, claims, key),
        "token_type": "bearer",
        "expires_in": lifetime,
        "scope": claims["scope"],
    }
