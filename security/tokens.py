"""Bearer JWT verification: signature by a configured issuer's keys, then the registered claims.

The issuers file (settings.SECURITY_JWT_ISSUERS_FILE) is a JSON list of
{"issuer": ..., "audience": ..., "jwks_file": ...}. A token is checked only against the key set
of the issuer it names, so one issuer's key can never vouch for another issuer's tokens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from .refusal import Refusal

logger = logging.getLogger(__name__)

# Only public-key signatures: a symmetric (HS*) key would have to be shared with the server, and
# accepting HS* is what makes the RS/HS key-confusion attack possible. A setting naming anything
# else is ignored rather than trusted.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
# Larger than any sane access token; stops a huge header from costing parsing time.
MAX_TOKEN_LENGTH = 16 * 1024


@dataclass(frozen=True)
class Issuer:
    issuer: str
    audience: str
    keys: KeySet


def verify_token(raw: str) -> dict[str, Any]:
    """The verified claims of a compact JWS token; Refusal("token-invalid") on any failure.

    A token verified before is answered from a per-process cache (see `_VerifiedCache`)."""
    try:
        state = _verification_state()
        cached = _verified.get(raw, state)
        if cached is not None:
            return cached
        claims = _verify(raw)
        _verified.put(raw, claims, state)
        return dict(claims)
    except Refusal:
        raise
    except Exception:  # fail closed: whatever goes wrong, the token is not accepted
        raise Refusal("token-invalid") from None


class _VerifiedCache:
    """Claims of verified tokens by the token's SHA-256 (never the token itself), each kept
    until the token expires, at most SECURITY_CACHE_SECONDS (so a signing key withdrawn from
    the database stops its tokens as soon as other cached trust state), and only while the
    verification state it was checked under (issuers, their key files, algorithms, lifetime
    limit) is unchanged. Bounded: the oldest entries go first. Refusals are never cached."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[dict, float, tuple]] = OrderedDict()

    @staticmethod
    def _key(raw: str) -> bytes:
        return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).digest()

    def get(self, raw: str, state: tuple) -> dict[str, Any] | None:
        key = self._key(raw)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            claims, until, checked_under = entry
            if checked_under != state or time.time() >= min(until, claims["exp"]):
                del self._entries[key]
                return None
            return dict(claims)

    def put(self, raw: str, claims: dict[str, Any], state: tuple) -> None:
        until = time.time() + settings.SECURITY_CACHE_SECONDS
        with self._lock:
            self._entries[self._key(raw)] = (dict(claims), until, state)
            while len(self._entries) > self.LIMIT:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_verified = _VerifiedCache()


def _verification_state() -> tuple:
    """What a verification depended on besides the token: a change refuses every cached one."""
    configured_issuers()  # reloads (and so bumps the generation) when a file changed
    return (
        _cache["generation"],
        tuple(settings.SECURITY_JWT_ALGORITHMS),
        settings.SECURITY_JWT_MAX_LIFETIME_SECONDS,
        settings.SECURITY_JWT_ISSUERS_FILE,
        _builtin_name(),
    )


def _verify(raw: str) -> dict[str, Any]:
    if not isinstance(raw, str) or len(raw) > MAX_TOKEN_LENGTH or raw.count(".") != 2:
        raise Refusal("token-invalid")
    # Read the unverified payload only to learn which issuer's keys to verify with.
    unverified = jws.extract_compact(raw.encode("ascii"))
    header = unverified.headers()
    issuer = _issuer_named(_claims_of(unverified.payload).get("iss"))
    algorithm = _allowed_algorithm(header.get("alg"), issuer)
    key = _key_for(issuer, header.get("kid"))
    token = jwt.decode(raw, key, algorithms=[algorithm])
    claims = token.claims
    _check_claims(claims, issuer)
    return claims


def _claims_of(payload: bytes | None) -> dict[str, Any]:
    claims = json.loads(payload or b"")
    if not isinstance(claims, dict):
        raise Refusal("token-invalid")
    return claims


def _issuer_named(name: Any) -> Issuer:
    issuer = None
    if isinstance(name, str):
        issuer = builtin_issuer() if name == _builtin_name() else configured_issuers().get(name)
    if issuer is None:
        raise Refusal("token-invalid")
    return issuer


def _allowed_algorithm(alg: Any, issuer: Issuer) -> str:
    allowed = set(settings.SECURITY_JWT_ALGORITHMS) & ASYMMETRIC_ALGORITHMS
    if issuer.issuer == _builtin_name():
        # The built-in server signs with exactly one algorithm, whatever external issuers use.
        from .oauth import config

        allowed = {config.TOKEN_ALGORITHM}
    if not isinstance(alg, str) or alg not in allowed:
        raise Refusal("token-invalid")
    return alg


def _key_for(issuer: Issuer, kid: Any) -> Key:
    """The issuer's key named by `kid`; without a kid, the issuer's only key."""
    if kid is not None and not isinstance(kid, str):
        raise Refusal("token-invalid")
    # get_by_kid(None) answers only for a single-key set, so an unnamed key is never guessed.
    return issuer.keys.get_by_kid(kid)


def _check_claims(claims: dict[str, Any], issuer: Issuer) -> None:
    required: jwt.ClaimsOption = {"essential": True}
    registry = jwt.JWTClaimsRegistry(
        leeway=settings.SECURITY_JWT_LEEWAY_SECONDS,
        iss={**required, "value": issuer.issuer},
        aud={**required, "value": issuer.audience},
        exp=required,
        iat=required,
    )
    registry.validate(claims)
    # A long-lived token is a stolen-token risk however validly it was signed.
    if claims["exp"] - claims["iat"] > settings.SECURITY_JWT_MAX_LIFETIME_SECONDS:
        raise Refusal("token-invalid")


def _builtin_name() -> str | None:
    from .oauth import config

    return config.issuer() if config.enabled() else None


def builtin_issuer() -> Issuer:
    """The built-in authorization server (security/oauth) as an issuer: its published keys are
    read from the database on each use, so a rotation reaches every worker at once."""
    from .oauth import config, signing

    return Issuer(config.issuer(), config.audience(), signing.public_key_set())


def is_builtin(claims: dict[str, Any]) -> bool:
    return _builtin_name() is not None and claims.get("iss") == _builtin_name()


# --- issuer configuration, cached per process -------------------------------------------------

_lock = threading.Lock()
_cache: dict[str, Any] = {"stamp": None, "issuers": {}, "files": (), "generation": 0}


def configured_issuers() -> dict[str, Issuer]:
    """The configured issuers by name; reloaded when the issuers file or a JWKS file changes."""
    path = settings.SECURITY_JWT_ISSUERS_FILE
    if not path:
        return {}
    with _lock:
        if _cache["stamp"] != _stamp(path, _cache["files"]):
            issuers, jwks_files = _load_issuers(path)
            _cache.update(issuers=issuers, files=jwks_files, stamp=_stamp(path, jwks_files))
            _cache["generation"] += 1
        return _cache["issuers"]


def clear_issuer_cache() -> None:
    """Forget the issuers and every token verified with them."""
    with _lock:
        _cache.update(stamp=None, issuers={}, files=())
        _cache["generation"] += 1
    _verified.clear()


def _stamp(path: str, jwks_files: tuple[str, ...]) -> tuple:
    # A few stats per request are cheap, and let keys rotate without a restart.
    return tuple((name, _mtime(name)) for name in (path, *jwks_files))


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _load_issuers(path: str) -> tuple[dict[str, Issuer], tuple[str, ...]]:
    """Parse the issuers file; a broken file means no issuers (every token refused), not a 500."""
    try:
        entries = json.loads(Path(path).read_text())
        if not isinstance(entries, list):
            raise ValueError("the issuers file must hold a JSON list")
        issuers, jwks_files = {}, []
        for entry in entries:
            # A relative jwks_file is read next to the issuers file.
            jwks_file = str(Path(path).parent / entry["jwks_file"])
            keys = _load_key_set(jwks_file)
            issuers[entry["issuer"]] = Issuer(entry["issuer"], entry["audience"], keys)
            jwks_files.append(jwks_file)
        return issuers, tuple(jwks_files)
    except (OSError, ValueError, KeyError, TypeError, JoseError) as error:
        logger.error("JWT issuers file %s is unusable: %s", path, error)
        return {}, ()


def _load_key_set(jwks_file: str) -> KeySet:
    keys = KeySet.import_key_set(json.loads(Path(jwks_file).read_text()))
    if any(key.is_private for key in keys):
        # Private parts in a verifier's JWKS mean a signing key was copied where it must not be.
        raise ValueError(f"{jwks_file} holds private key material")
    return keys
