"""makejwtissuer and minttoken: the demo's way to an issuer and a token the server accepts."""

import io
import json
import stat

import pytest
from django.core.management import CommandError, call_command

from security.scopes import describe, token_grants
from security.tokens import clear_issuer_cache, verify_token

from .jwt_fixtures import *  # noqa: F403  (fixtures)

ISSUER, AUDIENCE = "https://demo-auth.example/", "https://demo.example/fhir"


def run(name, *args) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def demo_issuer(settings, tmp_path):
    settings.ENVIRONMENT = "dev"
    run("makejwtissuer", "--dir", str(tmp_path), "--issuer", ISSUER, "--audience", AUDIENCE)
    settings.SECURITY_JWT_ISSUERS_FILE = str(tmp_path / "issuers.json")
    settings.SECURITY_JWT_ALGORITHMS = ["RS256", "ES256"]
    settings.SECURITY_SCOPE_CONVENTION = "both"
    clear_issuer_cache()
    yield tmp_path
    clear_issuer_cache()


def mint(directory, *extra) -> str:
    base = ["--key", str(directory / "issuer.key.pem"), "--issuer", ISSUER]
    return run("minttoken", *base, "--audience", AUDIENCE, "--sub", "demo", *extra)


def test_issuer_files_are_written_with_a_private_key_only_the_owner_reads(demo_issuer):
    mode = stat.S_IMODE((demo_issuer / "issuer.key.pem").stat().st_mode)
    assert mode == 0o600
    jwks = json.loads((demo_issuer / "issuer.jwks.json").read_text())
    assert [key["kty"] for key in jwks["keys"]] == ["EC"]
    assert "d" not in jwks["keys"][0]  # public only
    assert json.loads((demo_issuer / "issuers.json").read_text()) == [
        {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "issuer.jwks.json"}
    ]


def test_minted_token_is_accepted_with_its_scopes(demo_issuer):
    kid = json.loads((demo_issuer / "issuer.jwks.json").read_text())["keys"][0]["kid"]
    token = mint(demo_issuer, f"--kid={kid}", "--scope", "system/Organization.read")
    claims = verify_token(token)
    assert claims["sub"] == "demo"
    assert claims["exp"] - claims["iat"] == 3600
    assert describe(token_grants(claims)) == {"Organization.r", "Organization.s"}


def test_minted_nhs_token_without_kid_uses_the_thumbprint(demo_issuer):
    token = mint(demo_issuer, "--requested-scope", "organization/*.write", "--lifetime", "60")
    assert "Endpoint.c" in describe(token_grants(verify_token(token)))


def test_second_issuer_joins_the_issuers_file(demo_issuer):
    args = ["--issuer", "https://other.example/", "--audience", "aud-2", "--name", "other"]
    run("makejwtissuer", "--dir", str(demo_issuer), *args)
    issuers = json.loads((demo_issuer / "issuers.json").read_text())
    assert [entry["issuer"] for entry in issuers] == [ISSUER, "https://other.example/"]


def test_existing_private_key_is_not_overwritten(demo_issuer):
    before = (demo_issuer / "issuer.key.pem").read_bytes()
    with pytest.raises(CommandError):
        run("makejwtissuer", "--dir", str(demo_issuer), "--issuer", "x", "--audience", "y")
    assert (demo_issuer / "issuer.key.pem").read_bytes() == before


def test_lifetime_beyond_the_maximum_is_refused(demo_issuer, settings):
    settings.SECURITY_JWT_MAX_LIFETIME_SECONDS = 600
    with pytest.raises(CommandError):
        mint(demo_issuer, "--lifetime", "601")


def test_public_key_cannot_sign(demo_issuer, tmp_path, jwt_keys):
    public = tmp_path / "public.pem"
    public.write_bytes(jwt_keys.ec_a.as_pem(private=False))
    with pytest.raises(CommandError):
        run("minttoken", "--key", str(public), "--issuer", ISSUER, "--audience", AUDIENCE,
            "--sub", "x")  # fmt: skip


@pytest.mark.parametrize("command", ["minttoken", "makejwtissuer"])
def test_commands_refuse_to_run_in_prod(settings, tmp_path, command):
    settings.ENVIRONMENT = "prod"
    args = ["--issuer", ISSUER, "--audience", AUDIENCE]
    if command == "minttoken":
        args += ["--key", str(tmp_path / "k.pem"), "--sub", "x"]
    else:
        args += ["--dir", str(tmp_path)]
    with pytest.raises(CommandError, match="prod"):
        run(command, *args)
    assert not (tmp_path / "issuers.json").exists()
