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
