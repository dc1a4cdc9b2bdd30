"""Verified tokens are cached by their SHA-256 until they expire, never past a change of the
issuers, their keys or the verification settings, and never longer than SECURITY_CACHE_SECONDS."""

import json
import os
import time

import pytest
from joserfc import jwt

from security import tokens
from security.refusal import Refusal
from security.tokens import verify_token

from .jwt_fixtures import *  # noqa: F403  (fixtures)
from .jwt_fixtures import AUDIENCE_A, ISSUER_A, sign, write_jwks

pytestmark = pytest.mark.usefixtures("jwt_settings")


@pytest.fixture
def decodes(monkeypatch):
    """How many tokens went through signature verification."""
    calls = []
    real = jwt.decode

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    return calls


def test_a_verified_token_is_not_verified_again(jwt_keys, decodes):
    token = sign(jwt_keys.ec_a, sub="client-1")
    assert verify_token(token)["sub"] == "client-1"
    assert verify_token(token)["sub"] == "client-1"
    assert len(decodes) == 1


def test_the_cache_holds_a_digest_never_the_token(jwt_keys):
    token = sign(jwt_keys.ec_a)
    verify_token(token)
    (key,) = tokens._verified._entries
    assert len(key) == 32
    assert token.encode() not in repr(tokens._verified._entries).encode()


def test_a_caller_changing_the_claims_does_not_change_the_cache(jwt_keys):
    token = sign(jwt_keys.ec_a, scope="system/Practitioner.rs")
    verify_token(token)["scope"] = "system/*.cruds"
    assert verify_token(token)["scope"] == "system/Practitioner.rs"


def test_a_cached_token_is_refused_once_expired(jwt_keys, monkeypatch):
    token = sign(jwt_keys.ec_a)
    expires = verify_token(token)["exp"]
    monkeypatch.setattr(tokens.time, "time", lambda: expires + 3600)
    with pytest.raises(Refusal):
        verify_token(token)


def test_cached_no_longer_than_the_security_cache_seconds(jwt_keys, decodes, jwt_settings):
    jwt_settings.SECURITY_CACHE_SECONDS = 0
    token = sign(jwt_keys.ec_a)
    verify_token(token)
    verify_token(token)
    assert len(decodes) == 2


def test_a_key_withdrawn_from_the_jwks_refuses_a_cached_token(jwt_settings, jwt_keys, tmp_path):
    write_jwks(tmp_path / "jwks.json", [jwt_keys.ec_a])
    entry = {"issuer": ISSUER_A, "audience": AUDIENCE_A, "jwks_file": "jwks.json"}
    (tmp_path / "issuers.json").write_text(json.dumps([entry]))
    jwt_settings.SECURITY_JWT_ISSUERS_FILE = str(tmp_path / "issuers.json")
    token = sign(jwt_keys.ec_a)
    assert verify_token(token)
    write_jwks(tmp_path / "jwks.json", [jwt_keys.stray])
    os.utime(tmp_path / "jwks.json", ns=(1, 1))  # a distinct mtime, however coarse the clock
    with pytest.raises(Refusal):
        verify_token(token)


def test_an_algorithm_no_longer_allowed_refuses_a_cached_token(jwt_settings, jwt_keys):
    token = sign(jwt_keys.ec_a, "ES256")
    assert verify_token(token)
    jwt_settings.SECURITY_JWT_ALGORITHMS = ["RS256"]
    with pytest.raises(Refusal):
        verify_token(token)


def test_the_cache_is_bounded(jwt_keys, monkeypatch):
    monkeypatch.setattr(tokens._VerifiedCache, "LIMIT", 3)
    issued = [sign(jwt_keys.ec_a, sub=f"client-{n}") for n in range(5)]
    for token in issued:
        verify_token(token)
    assert len(tokens._verified._entries) == 3
    first = tokens._verified._key(issued[0])
    assert first not in tokens._verified._entries


def test_refusals_are_not_cached(jwt_keys):
    token = sign(jwt_keys.ec_a, exp=int(time.time()) - 3600, iat=int(time.time()) - 3700)
    for _ in range(2):
        with pytest.raises(Refusal):
            verify_token(token)
    assert not tokens._verified._entries
