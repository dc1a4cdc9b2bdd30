"""makesecrets: the demo's own random secrets, written once 0600 and reused, never printed."""

import stat

import pytest
from django.core.management import CommandError, call_command

from security.checks import DEV_SECRET_KEY, MIN_SECRET_KEY_LENGTH


def _run(path, capsys) -> str:
    call_command("makesecrets", file=str(path))
    return capsys.readouterr().out


def _values(path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_first_run_writes_owner_only_random_secrets_and_prints_none(tmp_path, capsys):
    path = tmp_path / "var" / "secrets.env"
    out = _run(path, capsys)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = _values(path)
    assert set(values) == {"SECRET_KEY", "SECURITY_API_KEY_PEPPER"}
    assert values["SECRET_KEY"] != values["SECURITY_API_KEY_PEPPER"]
    for value in values.values():
        assert len(value) >= MIN_SECRET_KEY_LENGTH and value != DEV_SECRET_KEY
        assert value not in out


def test_later_runs_keep_the_same_secrets(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    _run(path, capsys)
    first = path.read_text()
    assert "Keeping" in _run(path, capsys)
    assert path.read_text() == first
    other = tmp_path / "other.env"
    _run(other, capsys)
    assert _values(other) != _values(path), "each installation gets its own"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused(tmp_path, capsys, mode):
    path = tmp_path / "secrets.env"
    _run(path, capsys)
    path.chmod(mode)
    with pytest.raises(CommandError, match="chmod 600"):
        _run(path, capsys)


def test_a_file_without_both_secrets_is_refused(tmp_path, capsys):
    path = tmp_path / "secrets.env"
    path.write_text("SECRET_KEY=x\n")
    path.chmod(0o600)
    with pytest.raises(CommandError, match="SECURITY_API_KEY_PEPPER"):
        _run(path, capsys)
