"""Production readiness: the configurations a production service refuses to start with.

Registered as system checks (tag "security", so `manage.py check --tag security --database
default` reports them) and enforced when the WSGI application loads. Only ENVIRONMENT=prod is
checked: dev and test run with development defaults on purpose. Messages name the setting or
file at fault, never a secret value.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from .client_ip import trusted_proxies

# The development default of SECRET_KEY in config/settings.py; the pepper defaults to it too.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - the known value to refuse
MIN_SECRET_KEY_LENGTH = 50
# A private key file must not be readable (or writable) by anyone but its owner.
GROUP_OR_OTHER = stat.S_IRWXG | stat.S_IRWXO
TAG = "security"


def _error(message: str, hint: str, number: int) -> checks.Error:
    return checks.Error(message, hint=hint, id=f"security.E{number:03d}")


def _in_production() -> bool:
    return settings.ENVIRONMENT == "prod"


@checks.register(TAG)
def check_debug_off(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if _in_production() and settings.DEBUG:
        return [_error("DEBUG is on in production", "Set DEBUG=false.", 1)]
    return []


@checks.register(TAG)
def check_trust_anchor(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Needs the database, so it runs only when a database is given (as the WSGI start does)."""
    if not _in_production() or not databases:
        return []
    from .models import TrustAnchor

    try:
        has_root = TrustAnchor.objects.using("default").filter(kind=TrustAnchor.ROOT).exists()
    except DatabaseError:
        # Unknown is not good enough for a service whose every API request needs an anchor.
        return [
            _error(
                "The trust anchors could not be read from the database",
                "Check DATABASE_URL and run migrations.",
                2,
            )
        ]
    if not has_root:
        return [
            _error(
                "No trust anchor (root CA) is configured",
                "Add a trust community and its root CA certificate in the admin.",
                3,
            )
        ]
    return []


@checks.register(TAG)
def check_trusted_proxies(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if _in_production() and not settings.SECURITY_TRUSTED_PROXIES:
        return [
            _error(
                "No trusted proxy is configured",
                "Set SECURITY_TRUSTED_PROXIES to the TLS terminator's addresses.",
                4,
            )
        ]
    return []


LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@checks.register(TAG)
def check_no_loopback_proxy(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Every local user and process can connect to a loopback port and claim to be the proxy."""
    if not _in_production():
        return []
    _, networks = trusted_proxies()
    loopback = [
        str(network)
        for network in networks
        if any(network.version == lo.version and network.overlaps(lo) for lo in LOOPBACK)
    ]
    if loopback:
        return [
            _error(
                f"SECURITY_TRUSTED_PROXIES trusts loopback ({', '.join(loopback)})",
                "Bind gunicorn to a unix socket only nginx can reach and set "
                "SECURITY_TRUSTED_PROXIES=unix, or name the terminator's own non-loopback address.",
                10,
            )
        ]
    return []


@checks.register(TAG)
def check_secret_key(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not _in_production():
        return []
    key = settings.SECRET_KEY or ""
    if key == DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH:
        return [
            _error(
                "SECRET_KEY is the development default or too short",
                f"Set SECRET_KEY to a random value of at least {MIN_SECRET_KEY_LENGTH} characters.",
                5,
            )
        ]
    return []


@checks.register(TAG)
def check_api_key_pepper(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if _in_production() and settings.SECURITY_API_KEY_PEPPER in ("", DEV_SECRET_KEY):
        return [
            _error(
                "SECURITY_API_KEY_PEPPER is the development default",
                "Set SECURITY_API_KEY_PEPPER to its own random value.",
                6,
            )
        ]
    return []


@checks.register(TAG)
def check_private_key_files(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not _in_production():
        return []
    return [
        problem
        # The UDAP metadata signing key is one too, listed or not.
        for path in dict.fromkeys(
            [*settings.SECURITY_PRIVATE_KEY_FILES, settings.OAUTH_UDAP_KEY_FILE]
        )
        if path and (problem := _private_key_file_problem(path))
    ]


def _private_key_file_problem(path: str) -> checks.Error | None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return _error(f"Private key file {path} is missing or unreadable", "Fix the path.", 7)
    if mode & GROUP_OR_OTHER:
        return _error(
            f"Private key file {path} is accessible by group or others",
            f"Run: chmod 600 {path}",
            8,
        )
    return None


@checks.register(TAG)
def check_admin_two_factor(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """A stolen admin password alone must not open the admin of a production directory."""
    from .twofactor import otp_required

    if _in_production() and not otp_required():
        return [
            _error(
                "Two-factor sign-in to the admin is turned off",
                "Remove ADMIN_REQUIRE_OTP=false; enrol devices with `manage.py addtotpdevice`.",
                9,
            )
        ]
    return []


@checks.register(TAG)
def check_email_credentials_encrypted(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The subscription email channel logs in to its relay: never with a password in clear."""
    clear = not (settings.EMAIL_USE_TLS or getattr(settings, "EMAIL_USE_SSL", False))
    if (
        _in_production()
        and settings.SUBSCRIPTION_EMAIL_ENABLED
        and settings.EMAIL_HOST_PASSWORD
        and clear
    ):
        return [
            _error(
                "The email channel would send EMAIL_HOST_PASSWORD over unencrypted SMTP",
                "Set EMAIL_USE_TLS=true (STARTTLS) or EMAIL_USE_SSL=true.",
                11,
            )
        ]
    return []


def production_problems() -> list[checks.CheckMessage]:
    """The errors that stop a production start, with the database consulted."""
    messages = checks.run_checks(tags=[TAG], databases=["default"])
    return [message for message in messages if message.is_serious()]


def refuse_unsafe_production_start() -> None:
    """Raise ImproperlyConfigured listing every problem when a production config is unsafe."""
    if not _in_production():
        return
    problems = production_problems()
    _release_connection()
    if problems:
        listing = "\n".join(f"  - {p.msg} ({p.id}). {p.hint}" for p in problems)
        raise ImproperlyConfigured(f"Refusing to start in production:\n{listing}")


def _release_connection() -> None:
    # With preload_app the check runs in the master: a connection opened there must not be
    # inherited by every forked worker.
    connection = connections["default"]
    if not connection.in_atomic_block:
        connection.close()
