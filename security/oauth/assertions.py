"""private_key_jwt client authentication (SMART Backend Services, RFC 7523).

The assertion names the client (iss = sub = its client_id) and is verified with joserfc against
the public keys the client registered; then its claims: aud exactly our token endpoint, exp at
most five minutes out, a jti never seen before (until the assertion expires).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from django.conf import settings
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from ..models import ApiClient
from . import config, replay
from .errors import OAuthError

MAX_ASSERTION_LENGTH = 16 * 1024


def verify_assertion(raw: str) -> tuple[ApiClient, dict[str, Any]]:
    """The client the assertion authenticates and its claims; OAuthError(invalid_client) if not."""
    if len(raw) > MAX_ASSERTION_LENGTH or raw.count(".") != 2:
        raise OAuthError("invalid_client", "assertion is not a compact JWS")
    try:
        unverified = jws.extract_compact(raw.encode("ascii"))
        header, claims = unverified.headers(), json.loads(unverified.payload or b"")
    except (JoseError, ValueError, UnicodeError):
        raise OAuthError("invalid_client", "assertion cannot be parsed") from None
    if not isinstance(claims, dict):
        raise OAuthError("invalid_client", "assertion claims are not an object")
    client = _client_named(claims.get("iss"))
    algorithm = header.get("alg")
    if algorithm not in config.CLIENT_ALGORITHMS:
        raise OAuthError("invalid_client", f"algorithm {algorithm!r} not accepted")
    verified = _verified_claims(raw, _client_key(client, header.get("kid")), algorithm)
    _check_claims(verified, client)
    _remember(verified, client)
    return client, verified


def _client_named(client_id: Any) -> ApiClient:
    if not isinstance(client_id, str) or not client_id:
        raise OAuthError("invalid_client", "assertion has no iss")
    client = ApiClient.objects.filter(oauth_client_id=client_id).first()
    if client is None:
        raise OAuthError("invalid_client", "unknown client_id")
    if client.status != ApiClient.ACTIVE:
        raise OAuthError("invalid_client", "client suspended")
    return client


def _client_key(client: ApiClient, kid: Any) -> Key:
    if kid is not None and not isinstance(kid, str):
        raise OAuthError("invalid_client", "kid is not a string")
    try:
        keys = KeySet.import_key_set(json.loads(client.jwks or '{"keys": []}'))
        # get_by_kid(None) answers only for a one-key set: an unnamed key is never guessed.
        return keys.get_by_kid(kid)
    except (JoseError, ValueError, TypeError):
        raise OAuthError("invalid_client", f"no registered key with kid {kid!r}") from None


def _verified_claims(raw: str, key: Key, algorithm: str) -> dict[str, Any]:
    try:
        return jwt.decode(raw, key, algorithms=[algorithm]).claims
    except (JoseError, ValueError):
        raise OAuthError("invalid_client", "assertion signature does not verify") from None


def _client_id(client: ApiClient) -> str:
    # Set on every client an assertion can name: _client_named found it by this id.
    return cast(str, client.oauth_client_id)


def _check_claims(claims: dict[str, Any], client: ApiClient) -> None:
    essential: jwt.ClaimsOption = {"essential": True}
    registry = jwt.JWTClaimsRegistry(
        leeway=settings.SECURITY_JWT_LEEWAY_SECONDS,
        iss={**essential, "value": _client_id(client)},
        sub={**essential, "value": _client_id(client)},
        aud={**essential, "value": config.token_endpoint()},
        exp=essential,
        jti=essential,
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        raise OAuthError("invalid_client", f"assertion claim refused: {error.error}") from None
    # aud must be exactly the token endpoint: a list naming others too is another audience.
    if claims["aud"] != config.token_endpoint() and claims["aud"] != [config.token_endpoint()]:
        raise OAuthError("invalid_client", "aud is not exactly the token endpoint")
    now = datetime.now(UTC).timestamp()
    if claims["exp"] > now + config.MAX_ASSERTION_SECONDS + settings.SECURITY_JWT_LEEWAY_SECONDS:
        raise OAuthError("invalid_client", "exp more than five minutes out")
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise OAuthError("invalid_client", "jti is not a string")


def _remember(claims: dict[str, Any], client: ApiClient) -> None:
    expires = claims["exp"] + settings.SECURITY_JWT_LEEWAY_SECONDS
    try:
        replay.remember(
            "token", _client_id(client), claims["jti"], datetime.fromtimestamp(expires, UTC)
        )
    except replay.Replayed:
        raise OAuthError("invalid_client", "jti replayed") from None
