"""demosetup: a working demo client, key and token, and staff logins, in dev only."""

import pytest
from django.core.management import CommandError, call_command

from security.keys import KEY_PATTERN, verify_key
from security.tokens import verify_token

pytestmark = pytest.mark.django_db


def _run(tmp_path, capsys):
    call_command("demosetup", dir=str(tmp_path / "jwt"))
    return capsys.readouterr().out


def test_prints_a_working_key_and_token_and_retires_the_previous_key(
    tmp_path, capsys, settings, client
):
    settings.SECURITY_JWT_ISSUERS_FILE = str(tmp_path / "jwt" / "issuers.json")
    first = KEY_PATTERN.search(_run(tmp_path, capsys)).group(0)
    out = _run(tmp_path, capsys)
    second = KEY_PATTERN.search(out).group(0)
    assert verify_key(second) is not None and verify_key(first) is None
    token = next(line.strip() for line in out.splitlines() if line.strip().startswith("eyJ"))
    assert verify_token(token)["scope"] == "system/*.cruds"
    password = next(
        line.split()[2] for line in out.splitlines() if line.strip().startswith("admin /")
    )
    signed_in = client.post("/admin/login/", {"username": "admin", "password": password})
    assert signed_in.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_refuses_production(settings, tmp_path):
    settings.ENVIRONMENT = "prod"
    with pytest.raises(CommandError):
        call_command("demosetup", dir=str(tmp_path))


def test_with_the_builtin_server_the_printed_commands_get_a_token_first(
    tmp_path, capsys, settings, pki
):
    from cryptography.hazmat.primitives import serialization

    from security.models import ApiClient
    from security.oauth.assertions import verify_assertion

    settings.OAUTH_SERVER_URL = "https://localhost:8443"
    cert, key = tmp_path / "client.pem", tmp_path / "client.key.pem"
    cert.write_text(pki.valid.pem)
    key.write_bytes(
        pki.valid.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    call_command("demosetup", dir=str(tmp_path / "jwt"), client_cert=str(cert), client_key=str(key))
    out = capsys.readouterr().out
    assert "manage.py clientassertion --client-id demo-client" in out
    assert "https://localhost:8443/oauth/token" in out
    assert 'Authorization: Bearer $TOKEN"' in out
    assert not any(line.strip().startswith("eyJ") for line in out.splitlines())
    # What the printed clientassertion command signs is what the token endpoint accepts.
    call_command("clientassertion", client_id="demo-client", key=str(key))
    client, _ = verify_assertion(capsys.readouterr().out.strip())
    assert client == ApiClient.objects.get(name="Demo client")
