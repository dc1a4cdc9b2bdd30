"""The systemd units parse, are sandboxed the same way and start what the repository ships."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALL = "/opt/fhir-directory"
VENV_BIN = f"{INSTALL}/.venv/bin/"
SERVICE_USER = "fhir-directory"
SERVICES = sorted(UNITS.glob("*.service"))
UNIT_FILES = sorted([*SERVICES, *UNITS.glob("*.socket"), *UNITS.glob("*.timer")])

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "UMask": "0077",
    "User": SERVICE_USER,
    "EnvironmentFile": "/etc/fhir-directory/env",
}


class _RepeatedKeys(dict):
    """Keeps every value of a key systemd allows to repeat; configparser would keep the last."""

    def __setitem__(self, key, value):
        # While reading, configparser stores each option's lines as a list.
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def parse(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, dict_type=_RepeatedKeys, empty_lines_in_values=False
    )
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(path)
    return parser


def values(unit: configparser.ConfigParser, section: str, key: str) -> list[str]:
    """Every value given for `key`, in order (repeated keys are joined by newlines)."""
    return unit.get(section, key, fallback="").split("\n") if unit.has_option(section, key) else []


def exec_start(path: Path) -> list[str]:
    return shlex.split(parse(path)["Service"]["ExecStart"])


def test_there_are_units():
    names = {path.name for path in UNIT_FILES}
    assert {
        "fhir-directory.service",
        "fhir-directory.socket",
        "fhir-directory-crl.service",
        "fhir-directory-crl.timer",
        "fhir-directory-expirekeys.service",
        "fhir-directory-expirekeys.timer",
        "fhir-directory-rollupaudit.service",
        "fhir-directory-rollupaudit.timer",
        "fhir-directory-subscriptions.service",
    } <= names


@pytest.mark.parametrize("path", UNIT_FILES, ids=lambda path: path.name)
def test_every_unit_parses_with_a_description(path):
    unit = parse(path)
    assert unit["Unit"]["Description"]


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
def test_every_service_is_sandboxed(path):
    service = parse(path)["Service"]
    for key, expected in HARDENING.items():
        assert key in service, f"{path.name} lacks {key}="
        assert service[key] == expected, f"{path.name}: {key}={service[key]!r}"
    assert "@system-service" in service["SystemCallFilter"].split("\n")
    assert not service.get("AmbientCapabilities")


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
def test_every_service_writes_only_its_socket_and_log_directories(path):
    writable = " ".join(values(parse(path), "Service", "ReadWritePaths")).split()
    assert writable
    assert set(writable) <= {"/run/fhir-directory", "/var/log/fhir-directory"}


def test_export_files_live_in_one_private_state_directory():
    """The API serves the files the export runner writes: both use the same 0700 directory."""
    for name in ("fhir-directory.service", "fhir-directory-exports.service"):
        unit = parse(UNITS / name)["Service"]
        assert unit["StateDirectory"] == "fhir-directory/exports"
        assert unit["StateDirectoryMode"] == "0700"
        assert "BULK_EXPORT_DIR=/var/lib/fhir-directory/exports" in unit["Environment"]
    runner = exec_start(UNITS / "fhir-directory-exports.service")
    assert runner[-3:] == [f"{INSTALL}/manage.py", "runexports", "--loop"]
    assert (ROOT / "directory" / "management" / "commands" / "runexports.py").is_file()


def test_the_server_restarts_on_failure_and_reloads_gracefully():
    service = parse(UNITS / "fhir-directory.service")["Service"]
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -s HUP $MAINPID"
    assert service["Type"] == "notify"  # gunicorn's arbiter sends READY=1


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
def test_exec_start_runs_the_installed_virtualenv_from_the_install_directory(path):
    service = parse(path)["Service"]
    assert service["WorkingDirectory"] == INSTALL
    command = exec_start(path)
    assert command[0].startswith(VENV_BIN)
    for argument in command[1:]:
        if argument.startswith(INSTALL + "/"):
            shipped = ROOT / argument.removeprefix(INSTALL + "/")
            assert shipped.is_file(), f"{path.name} runs {argument}, not in the repository"


def test_the_server_runs_gunicorn_with_the_shipped_config():
    command = exec_start(UNITS / "fhir-directory.service")
    assert command[0] == VENV_BIN + "gunicorn"
    assert (ROOT / command[1].replace(".", "/")).with_suffix(".py").is_file()  # config.wsgi
    assert command[command.index("--config") + 1] == f"{INSTALL}/deploy/gunicorn.conf.py"


@pytest.mark.parametrize(
    ("timer", "command", "calendar"),
    [
        ("fhir-directory-crl", "refreshcrls", "hourly"),
        ("fhir-directory-expirekeys", "expirekeys", "daily"),
        ("fhir-directory-rollupaudit", "rollup_audit", "hourly"),
    ],
)
def test_each_timer_runs_its_management_command(timer, command, calendar):
    settings = parse(UNITS / f"{timer}.timer")["Timer"]
    assert settings["OnCalendar"] == calendar
    assert settings["Persistent"] == "true"
    service = parse(UNITS / f"{timer}.service")["Service"]
    assert service["Type"] == "oneshot"
    assert exec_start(UNITS / f"{timer}.service")[-2:] == [f"{INSTALL}/manage.py", command]
    assert (ROOT / "security" / "management" / "commands" / f"{command}.py").is_file()


def test_the_socket_is_for_the_service_and_nginx_only():
    socket = parse(UNITS / "fhir-directory.socket")["Socket"]
    service = parse(UNITS / "fhir-directory.service")
    assert socket["SocketMode"] == "0660"
    assert socket["SocketUser"] == service["Service"]["User"]
    assert socket["SocketGroup"] in {"www-data", "nginx"}
    assert socket["ListenStream"].startswith("/run/fhir-directory/")
    assert "fhir-directory.socket" in service["Unit"]["Requires"]


def test_readme_gives_the_modes_of_key_material():
    readme = (UNITS / "README.md").read_text()
    for needle in ("0600", "0644", "/etc/fhir-directory/env", "fhir-directory:fhir-directory"):
        assert needle in readme


def test_systemd_accepts_the_units(tmp_path):
    """systemd-analyze verify, on copies pointing at this checkout so the binaries exist."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for path in UNIT_FILES:
        text = path.read_text().replace(INSTALL, str(ROOT))
        (tmp_path / path.name).write_text(text.replace("/etc/fhir-directory/env", "/dev/null"))
    copies = [str(tmp_path / path.name) for path in UNIT_FILES]
    result = subprocess.run(  # noqa: S603 - fixed tool, test only
        [analyze, "verify", *copies], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    # verify warns (exit status 0) about unknown keys and bad values: any line on our files fails.
    complaints = [line for line in output.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not complaints, output


def test_the_subscription_worker_runs_its_command_and_restarts():
    service = parse(UNITS / "fhir-directory-subscriptions.service")["Service"]
    assert service["Restart"] == "on-failure"
    assert exec_start(UNITS / "fhir-directory-subscriptions.service")[-2:] == [
        f"{INSTALL}/manage.py",
        "deliversubscriptions",
    ]
