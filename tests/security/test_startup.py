"""A production process refuses to start with an unsafe configuration, and names every problem."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import checks as django_checks
from django.utils import timezone

from security import checks
from security.models import TrustAnchor, TrustCommunity
from tests.servers import (
    ROOT,
    all_logs,
    gunicorn,
    http,
    process_env,
    unix_socket,
    wait_until_serving,
)

GOOD_SECRET = "s" * 64
GOOD_PEPPER = "p" * 64


@pytest.fixture
def root_anchor(db):
    community = TrustCommunity.objects.create(name="Startup Community", slug="startup")
    now = timezone.now()
    return TrustAnchor.objects.create(
        community=community,
        kind=TrustAnchor.ROOT,
        certificate_pem="-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        subject="CN=Startup Root",
        fingerprint_sha256="ab" * 32,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
    )


@pytest.fixture
def private_key(tmp_path) -> Path:
    path = tmp_path / "server.key"
    path.write_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def prod(settings, root_anchor, private_key):
    """A correct production configuration; tests break one thing at a time."""
    settings.ENVIRONMENT = "prod"
    settings.DEBUG = False
    settings.SECRET_KEY = GOOD_SECRET
    settings.SECURITY_API_KEY_PEPPER = GOOD_PEPPER
    settings.SECURITY_TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.SECURITY_PRIVATE_KEY_FILES = [str(private_key)]
    return settings


def problem_ids() -> set[str]:
    return {message.id for message in checks.production_problems()}


def test_correct_production_config_is_accepted(prod):
    assert problem_ids() == set()
    checks.refuse_unsafe_production_start()


def test_checks_are_registered_under_the_security_tag(prod):
    prod.DEBUG = True
    messages = django_checks.run_checks(tags=["security"])
    assert [m.id for m in messages] == ["security.E001"]
    assert all(m.level == django_checks.ERROR for m in messages)


def test_debug_is_refused(prod):
    prod.DEBUG = True
    assert problem_ids() == {"security.E001"}


def test_missing_root_anchor_is_refused(prod, root_anchor):
    root_anchor.kind = TrustAnchor.INTERMEDIATE
    root_anchor.save()
    assert problem_ids() == {"security.E003"}


def test_missing_trusted_proxy_is_refused(prod):
    prod.SECURITY_TRUSTED_PROXIES = []
    assert problem_ids() == {"security.E004"}


@pytest.mark.parametrize(
    "proxies",
    [
        ["127.0.0.1/32"],
        ["127.0.0.2"],
        ["::1/128"],
        ["unix", "10.0.0.5/32", "127.0.0.0/8"],
        ["0.0.0.0/0"],  # covers loopback too
        ["::/0"],
    ],
)
def test_a_trusted_loopback_proxy_is_refused(prod, proxies):
    # Anyone on the host can connect to loopback and send a certificate header as "nginx".
    prod.SECURITY_TRUSTED_PROXIES = proxies
    assert problem_ids() == {"security.E010"}


@pytest.mark.parametrize("proxies", [["unix"], ["10.0.0.5/32"], ["fd00::/8", "unix"]])
def test_a_unix_socket_or_a_non_loopback_proxy_is_accepted(prod, proxies):
    prod.SECURITY_TRUSTED_PROXIES = proxies
    assert problem_ids() == set()


def test_the_default_trusts_only_a_unix_socket():
    # Read in a fresh process: the test settings stand the test client in for the proxy.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURITY_")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from config import settings; print(settings.SECURITY_TRUSTED_PROXIES)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "['unix']", result.stderr


@pytest.mark.parametrize("secret", [checks.DEV_SECRET_KEY, "x" * 49])
def test_development_or_short_secret_key_is_refused(prod, secret):
    prod.SECRET_KEY = secret
    assert problem_ids() == {"security.E005"}


def test_development_pepper_is_refused(prod):
    prod.SECURITY_API_KEY_PEPPER = checks.DEV_SECRET_KEY
    assert problem_ids() == {"security.E006"}


def test_missing_private_key_file_is_refused(prod, tmp_path):
    prod.SECURITY_PRIVATE_KEY_FILES = [str(tmp_path / "absent.key")]
    assert problem_ids() == {"security.E007"}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o606])
def test_group_or_other_accessible_private_key_is_refused(prod, private_key, mode):
    private_key.chmod(mode)
    assert problem_ids() == {"security.E008"}


def test_every_problem_is_listed_without_secrets(prod, tmp_path):
    prod.DEBUG = True
    prod.SECRET_KEY = checks.DEV_SECRET_KEY
    prod.SECURITY_API_KEY_PEPPER = checks.DEV_SECRET_KEY
    prod.SECURITY_TRUSTED_PROXIES = []
    prod.SECURITY_PRIVATE_KEY_FILES = [str(tmp_path / "absent.key")]
    TrustAnchor.objects.all().delete()
    with pytest.raises(Exception, match="Refusing to start in production") as refused:
        checks.refuse_unsafe_production_start()
    message = str(refused.value)
    for number in (1, 3, 4, 5, 6, 7):
        assert f"security.E00{number}" in message
    assert checks.DEV_SECRET_KEY not in message


@pytest.mark.parametrize("environment", ["dev", "test"])
def test_other_environments_are_not_refused(settings, environment, db):
    settings.ENVIRONMENT = environment
    settings.DEBUG = True
    settings.SECURITY_TRUSTED_PROXIES = []
    assert checks.production_problems() == []
    checks.refuse_unsafe_production_start()


# ---------------------------------------------------------------------------- real processes


BAD_PROD = {
    "ENVIRONMENT": "prod",
    "DEBUG": "true",
    "SECRET_KEY": checks.DEV_SECRET_KEY,
    "SECURITY_TRUSTED_PROXIES": "",
}


@pytest.mark.django_db(transaction=True)
def test_wsgi_module_refuses_a_bad_production_config():
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env=process_env(**BAD_PROD),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr
    for problem in ("DEBUG is on", "No trusted proxy", "SECRET_KEY", "No trust anchor"):
        assert problem in result.stderr
    assert checks.DEV_SECRET_KEY not in result.stderr


@pytest.mark.django_db(transaction=True)
def test_gunicorn_exits_with_a_bad_production_config(tmp_path):
    with gunicorn(process_env(**BAD_PROD), tmp_path) as (_, process):
        returncode = process.wait(timeout=60)
    assert returncode != 0
    logs = all_logs(tmp_path)
    assert "Refusing to start in production" in logs
    assert "No trusted proxy" in logs and "DEBUG is on" in logs


@pytest.mark.django_db(transaction=True)
def test_gunicorn_serves_with_a_correct_production_config(tmp_path, root_anchor, private_key):
    env = process_env(
        ENVIRONMENT="prod",
        DEBUG="false",
        SECRET_KEY=GOOD_SECRET,
        SECURITY_API_KEY_PEPPER=GOOD_PEPPER,
        SECURITY_TRUSTED_PROXIES="unix",
        SECURITY_PRIVATE_KEY_FILES=str(private_key),
    )
    with unix_socket() as sock, gunicorn(env, tmp_path, f"unix:{sock}") as (url, process):
        wait_until_serving(url, process)
        response = http().get(f"{url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert not any(char.isdigit() for char in response.headers.get("Server", "")), "no version"
    assert "Refusing" not in all_logs(tmp_path)


def test_settings_default_secret_key_is_the_one_refused():
    # The check compares against a copy of the settings default; keep them in step.
    source = (ROOT / "config" / "settings.py").read_text()
    assert f'default="{checks.DEV_SECRET_KEY}"' in source
    assert django_settings.ENVIRONMENT in ("dev", "test", "prod")


def test_email_relay_password_in_clear_is_refused(prod):
    prod.SUBSCRIPTION_EMAIL_ENABLED = True
    prod.EMAIL_HOST_PASSWORD = "relay-password"
    assert problem_ids() == {"security.E011"}
    prod.EMAIL_USE_TLS = True
    assert problem_ids() == set()
