"""Bearer JWT verification: signatures, algorithms, keys and issuers, and the registered claims."""

import json
import os

import pytest

from security.refusal import Refusal
from security.tokens import verify_token

from .jwt_fixtures import *  # noqa: F403  (fixtures)
from .jwt_fixtures import (
    AUDIENCE_A,
    AUDIENCE_B,
    ISSUER_A,
    ISSUER_B,
    b64,
    claims,
    hs256_with_secret,
    sign,
    unsigned,
    write_jwks,
)

pytestmark = pytest.mark.usefixtures("jwt_settings")


def compact(header: bytes, payload: bytes) -> str:
    return f"{b64(header)}.{b64(payload)}.{b64(b'signature')}"


def refused(token) -> bool:
    try:
        verify_token(token)
    except Refusal as refusal:
        assert refusal.reason.code == "token-invalid"
        return True
    return False


def test_valid_rs256_token_gives_its_claims(jwt_keys):
    verified = verify_token(sign(jwt_keys.rsa_a, "RS256", sub="client-1"))
    assert verified["sub"] == "client-1"
    assert verified["iss"] == ISSUER_A


def test_valid_es256_token_gives_its_claims(jwt_keys):
    assert verify_token(sign(jwt_keys.ec_a, "ES256"))["aud"] == AUDIENCE_A


def test_audience_list_containing_ours_is_accepted(jwt_keys):
    assert verify_token(sign(jwt_keys.ec_a, aud=["urn:other", AUDIENCE_A]))


def test_second_issuer_with_its_own_key_is_accepted(jwt_keys):
    token = sign(jwt_keys.ec_b, iss=ISSUER_B, aud=AUDIENCE_B)
    assert verify_token(token)["iss"] == ISSUER_B


def test_issuer_a_claim_signed_by_issuer_b_key_is_refused(jwt_keys):
    # Same kid as one of A's keys would not help either: B's key is not in A's set.
    assert refused(sign(jwt_keys.ec_b, iss=ISSUER_A))
    assert refused(sign(jwt_keys.ec_b, kid="ec-a", iss=ISSUER_A))


def test_issuer_b_claim_signed_by_issuer_a_key_is_refused(jwt_keys):
    assert refused(sign(jwt_keys.ec_a, iss=ISSUER_B, aud=AUDIENCE_B))


def test_alg_none_is_refused():
    assert refused(unsigned("none"))
    assert refused(unsigned("None"))


def test_hs256_with_rsa_public_key_as_secret_is_refused(jwt_keys):
    # The classic RS/HS confusion: a verifier that feeds the RSA key to HMAC would accept it.
    assert refused(hs256_with_secret(jwt_keys.rsa_a_public_pem, kid="rsa-a"))
    assert refused(hs256_with_secret(jwt_keys.rsa_a_public_pem))


def test_hs256_is_refused_even_if_configured(jwt_settings, jwt_keys):
    jwt_settings.SECURITY_JWT_ALGORITHMS = ["RS256", "ES256", "HS256"]
    assert refused(hs256_with_secret(jwt_keys.rsa_a_public_pem, kid="rsa-a"))


def test_algorithm_not_configured_is_refused(jwt_settings, jwt_keys):
    jwt_settings.SECURITY_JWT_ALGORITHMS = ["ES256"]
    assert refused(sign(jwt_keys.rsa_a, "RS256"))
    assert verify_token(sign(jwt_keys.ec_a, "ES256"))


def test_alg_not_matching_the_key_type_is_refused(jwt_keys):
    # An ES256 header naming the RSA key: the key type decides, not the attacker's header.
    token = sign(jwt_keys.ec_a, "ES256", kid="rsa-a")
    assert refused(token)


def test_rs256_header_over_ec_key_is_refused(jwt_keys):
    header_rs = b64(json.dumps({"alg": "RS256", "kid": "ec-a"}).encode())
    _, payload, signature = sign(jwt_keys.ec_a).split(".")
    assert refused(f"{header_rs}.{payload}.{signature}")


def test_key_nobody_configured_is_refused(jwt_keys):
    assert refused(sign(jwt_keys.stray))
    assert refused(sign(jwt_keys.stray, kid="ec-a"))


def test_unknown_kid_is_refused(jwt_keys):
    assert refused(sign(jwt_keys.ec_a, kid="no-such-kid"))


def test_missing_kid_with_several_keys_is_refused(jwt_keys):
    assert refused(sign(jwt_keys.ec_a, kid=None))


def test_missing_kid_with_a_single_key_issuer_is_accepted(jwt_keys):
    assert verify_token(sign(jwt_keys.ec_b, kid=None, iss=ISSUER_B, aud=AUDIENCE_B))


def test_tampered_payload_is_refused(jwt_keys):
    header, _, signature = sign(jwt_keys.ec_a, scope="system/*.read").split(".")
    payload = b64(json.dumps(claims(scope="system/*.*")).encode())
    assert refused(f"{header}.{payload}.{signature}")


def test_expired_token_is_refused(jwt_keys):
    now = claims()["iat"]
    assert refused(sign(jwt_keys.ec_a, iat=now - 600, exp=now - 61))


def test_expiry_within_leeway_is_accepted(jwt_keys):
    now = claims()["iat"]
    assert verify_token(sign(jwt_keys.ec_a, iat=now - 600, exp=now - 30))


def test_not_yet_valid_token_is_refused(jwt_keys):
    now = claims()["iat"]
    assert refused(sign(jwt_keys.ec_a, nbf=now + 120, exp=now + 600))
    assert verify_token(sign(jwt_keys.ec_a, nbf=now + 30))


def test_issued_in_the_future_beyond_leeway_is_refused(jwt_keys):
    now = claims()["iat"]
    assert refused(sign(jwt_keys.ec_a, iat=now + 120, exp=now + 600))
    assert verify_token(sign(jwt_keys.ec_a, iat=now + 30, exp=now + 600))


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud"])
def test_missing_required_claim_is_refused(jwt_keys, claim):
    assert refused(sign(jwt_keys.ec_a, **{claim: None}))


@pytest.mark.parametrize(
    "claim, value",
    [("exp", "tomorrow"), ("exp", True), ("iat", "now"), ("iss", 7), ("aud", 7), ("sub", 7)],
)
def test_claims_of_the_wrong_type_are_refused(jwt_keys, claim, value):
    assert refused(sign(jwt_keys.ec_a, **{claim: value}))


def test_wrong_issuer_is_refused(jwt_keys):
    assert refused(sign(jwt_keys.ec_a, iss="https://evil.example/"))


def test_wrong_audience_is_refused(jwt_keys):
    assert refused(sign(jwt_keys.ec_a, aud="https://other-service.example/"))
    # B's audience is not A's: each issuer's own audience is required.
    assert refused(sign(jwt_keys.ec_a, aud=AUDIENCE_B))


def test_lifetime_longer_than_allowed_is_refused(jwt_keys):
    now = claims()["iat"]
    assert refused(sign(jwt_keys.ec_a, iat=now, exp=now + 3601))
    assert verify_token(sign(jwt_keys.ec_a, iat=now, exp=now + 3600))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        compact(b"not json", b"{}"),
        compact(b'{"alg": "ES256"}', b"[1, 2]"),
        compact(b'{"alg": "ES256"}', b'"text"'),
        compact(b"[]", b"{}"),
        compact(b'{"alg": "ES256", "kid": "ec-a"}', b"not json"),
        "é.é.é",
        "x" * 20000,
    ],
)
def test_malformed_tokens_are_refused(raw):
    assert refused(raw)


def test_no_issuers_configured_refuses_everything(jwt_settings, jwt_keys):
    jwt_settings.SECURITY_JWT_ISSUERS_FILE = ""
    assert refused(sign(jwt_keys.ec_a))


def test_unreadable_issuers_file_refuses_everything(jwt_settings, jwt_keys, tmp_path):
    broken = tmp_path / "issuers.json"
    broken.write_text("{not json")
    jwt_settings.SECURITY_JWT_ISSUERS_FILE = str(broken)
    assert refused(sign(jwt_keys.ec_a))


def test_jwks_with_private_key_material_is_not_used(jwt_settings, jwt_keys, tmp_path):
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwt_keys.ec_a.as_dict(private=True)]}))
    entry = {"issuer": ISSUER_A, "audience": AUDIENCE_A, "jwks_file": "jwks.json"}
    (tmp_path / "issuers.json").write_text(json.dumps([entry]))
    jwt_settings.SECURITY_JWT_ISSUERS_FILE = str(tmp_path / "issuers.json")
    assert refused(sign(jwt_keys.ec_a))


def test_rotated_jwks_file_is_picked_up(jwt_settings, jwt_keys, tmp_path):
    write_jwks(tmp_path / "jwks.json", [jwt_keys.ec_a])
    entry = {"issuer": ISSUER_A, "audience": AUDIENCE_A, "jwks_file": "jwks.json"}
    (tmp_path / "issuers.json").write_text(json.dumps([entry]))
    jwt_settings.SECURITY_JWT_ISSUERS_FILE = str(tmp_path / "issuers.json")
    assert verify_token(sign(jwt_keys.ec_a))
    write_jwks(tmp_path / "jwks.json", [jwt_keys.stray])
    os.utime(tmp_path / "jwks.json", ns=(1, 1))  # a distinct mtime, however coarse the clock
    assert refused(sign(jwt_keys.ec_a))
    assert verify_token(sign(jwt_keys.stray))
