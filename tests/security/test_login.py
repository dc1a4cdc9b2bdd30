"""Admin sign-in hardening: lockout, TOTP, session and CSRF cookies, idle timeout, CSRF, caching."""

from base64 import b32decode
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from security import checks, twofactor
from security.roles import SUPPORT

from .staff import LOGIN_URL, PASSWORD, fast_passwords, login_form, make_staff, signed_in  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.9"


@pytest.fixture
def ann():
    return make_staff("ann", "admin")


def attempt(client, username="ann", password=PASSWORD, address=ATTACKER, **extra):
    return client.post(LOGIN_URL, login_form(username, password, **extra), REMOTE_ADDR=address)


def fail(client, times: int, address=ATTACKER):
    return [attempt(client, password="wrong", address=address) for _ in range(times)]


def session_user(client):
    return client.session.get("_auth_user_id")


# ------------------------------------------------------------------------------------- lockout


def test_five_failures_lock_the_account_even_against_the_right_password(client, ann):
    first_four = fail(client, 4)
    assert all(r.status_code == 200 for r in first_four), "a failed sign-in shows the form again"
    assert fail(client, 1)[0].status_code == 429

    response = attempt(client)

    assert response.status_code == 429
    assert session_user(client) is None


def test_the_lockout_page_is_plain_and_names_nobody(client, ann):
    fail(client, 5)
    response = attempt(client)
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "Too many failed sign-in attempts" in body
    assert "ann" not in body and PASSWORD not in body
    assert response["Cache-Control"] == "no-store"


def test_lockout_is_per_username_and_address(ann):
    make_staff("bob", "admin")
    fail(Client(), 5)

    assert signed_in(attempt(Client(), address=ELSEWHERE)), "same user, other address"
    assert signed_in(attempt(Client(), username="bob")), "other user, same address"


def test_a_successful_sign_in_resets_the_failure_count(ann):
    fail(Client(), 4)
    assert signed_in(attempt(Client()))
    fail(Client(), 4)
    assert signed_in(attempt(Client())), "eight failures in all, but never five in a row"


def test_the_lockout_ends_after_the_cool_off(client, ann):
    fail(client, 5)
    cool_off = django_settings.AXES_COOLOFF_TIME
    assert cool_off == timedelta(minutes=15)
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off - timedelta(seconds=1))

    assert signed_in(attempt(client))


def test_axes_is_wired_as_documented():
    assert django_settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert django_settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert django_settings.AXES_FAILURE_LIMIT == 5
    assert django_settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


# ------------------------------------------------------------------------------------- TOTP


@pytest.fixture
def otp_required(settings):
    settings.ADMIN_REQUIRE_OTP = True


def current_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


def test_without_otp_required_a_signed_in_admin_reaches_the_index(client, ann):
    client.force_login(ann)
    assert client.get("/admin/").status_code == 200


def test_a_signed_in_user_without_a_verified_device_is_kept_out(client, ann, otp_required):
    client.force_login(ann)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL)


def test_a_password_alone_is_not_enough(client, ann, otp_required):
    TOTPDevice.objects.create(user=ann, name="phone")
    response = attempt(client)
    assert not signed_in(response)
    assert client.get("/admin/").status_code == 302


def test_a_correct_token_from_the_users_device_admits(client, ann, otp_required):
    device = TOTPDevice.objects.create(user=ann, name="phone")
    response = attempt(client, otp_device=device.persistent_id, otp_token=current_token(device))
    assert signed_in(response)
    assert client.get("/admin/").status_code == 200


def test_a_wrong_token_does_not_admit(client, ann, otp_required):
    device = TOTPDevice.objects.create(user=ann, name="phone")
    wrong = f"{(int(current_token(device)) + 1) % 10**6:06d}"
    response = attempt(client, otp_device=device.persistent_id, otp_token=wrong)
    assert not signed_in(response)


def test_another_users_device_does_not_admit(client, ann, otp_required):
    other = TOTPDevice.objects.create(user=make_staff("bob", "admin"), name="phone")
    response = attempt(client, otp_device=other.persistent_id, otp_token=current_token(other))
    assert not signed_in(response)


def test_otp_is_required_in_production_unless_turned_off(settings):
    settings.ENVIRONMENT = "prod"
    settings.ADMIN_REQUIRE_OTP = None
    assert twofactor.otp_required()
    assert checks.check_admin_two_factor() == []

    settings.ADMIN_REQUIRE_OTP = False
    assert [e.id for e in checks.check_admin_two_factor()] == ["security.E009"]

    settings.ENVIRONMENT = "dev"
    assert checks.check_admin_two_factor() == []


def test_addtotpdevice_prints_a_uri_that_signs_the_user_in(client, ann, otp_required):
    out = StringIO()
    call_command("addtotpdevice", "ann", stdout=out)
    uri = next(line for line in out.getvalue().splitlines() if line.startswith("otpauth://"))
    query = parse_qs(urlparse(uri).query)
    secret = b32decode(query["secret"][0] + "=" * (-len(query["secret"][0]) % 8))
    device = TOTPDevice.objects.get(user=ann)
    assert secret == device.bin_key and device.confirmed
    token = f"{totp(secret):06d}"

    assert signed_in(attempt(client, otp_device=device.persistent_id, otp_token=token))


def test_addtotpdevice_refuses_unknown_and_non_staff_users():
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("visitor", password=PASSWORD)
    with pytest.raises(CommandError, match="No user"):
        call_command("addtotpdevice", "nobody", stdout=StringIO())
    with pytest.raises(CommandError, match="not a staff user"):
        call_command("addtotpdevice", "visitor", stdout=StringIO())
    assert not TOTPDevice.objects.exists()


# ------------------------------------------------------------------------- cookies and sessions


def test_the_session_cookie_is_httponly_strict_and_secure_when_configured(client, ann, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = attempt(client)
    assert signed_in(response)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["secure"] is True
    # A browser-session cookie: no lifetime of its own, the server enforces the idle timeout.
    assert cookie["max-age"] == "" and cookie["expires"] == ""
    assert client.session.get_expiry_age() == 15 * 60


def test_the_csrf_cookie_is_httponly_and_strict(client):
    cookie = client.get(LOGIN_URL).cookies[django_settings.CSRF_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"


def session_row(client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def test_every_request_pushes_the_idle_timeout_forward(client, ann):
    client.force_login(ann)
    Session.objects.filter(pk=client.session.session_key).update(
        expire_date=timezone.now() + timedelta(minutes=1)
    )
    assert client.get("/admin/").status_code == 200
    remaining = session_row(client).expire_date - timezone.now()
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)


def test_an_idle_session_is_signed_out(client, ann):
    client.force_login(ann)
    Session.objects.filter(pk=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL)


# ---------------------------------------------------------------------------- CSRF, caching


def test_a_login_post_without_csrf_token_is_refused(ann):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN_URL, login_form("ann"))
    assert response.status_code == 403
    assert session_user(client) is None


def test_a_login_post_with_the_csrf_token_is_accepted(ann):
    client = Client(enforce_csrf_checks=True)
    token = client.get(LOGIN_URL).cookies[django_settings.CSRF_COOKIE_NAME].value
    assert signed_in(client.post(LOGIN_URL, login_form("ann", csrfmiddlewaretoken=token)))


def test_an_admin_form_post_without_csrf_token_is_refused(ann):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    response = client.post("/admin/auth/user/add/", {"username": "mallory"})
    assert response.status_code == 403


def test_the_login_page_is_never_cached(client):
    assert client.get(LOGIN_URL)["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/admin/", "/admin/auth/user/", "/admin/password_change/"])
def test_admin_pages_are_never_cached(client, ann, path):
    client.force_login(ann)
    response = client.get(path)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


# ---------------------------------------------------------------------------- createstaffuser


@pytest.mark.parametrize(
    ("role", "group"), [("admin", "Directory administrators"), ("support", SUPPORT)]
)
def test_createstaffuser_reads_the_password_from_the_environment(monkeypatch, role, group):
    from django.contrib.auth import get_user_model

    monkeypatch.setenv("DJANGO_STAFF_PASSWORD", PASSWORD)
    out = StringIO()
    call_command("createstaffuser", "zoe", "--role", role, "--email", "z@example.org", stdout=out)

    user = get_user_model().objects.get(username="zoe")
    assert user.is_staff and not user.is_superuser
    assert user.email == "z@example.org"
    assert [g.name for g in user.groups.all()] == [group]
    assert user.check_password(PASSWORD)
    assert PASSWORD not in out.getvalue()


def test_createstaffuser_prompts_twice(monkeypatch):
    from django.contrib.auth import get_user_model

    monkeypatch.delenv("DJANGO_STAFF_PASSWORD", raising=False)
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    call_command("createstaffuser", "zed", "--role", "auditor", stdout=StringIO())
    assert get_user_model().objects.get(username="zed").groups.get().name == "Auditors"


def test_createstaffuser_refuses_mismatched_weak_or_duplicate(monkeypatch):
    monkeypatch.delenv("DJANGO_STAFF_PASSWORD", raising=False)
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(CommandError, match="do not match"):
        call_command("createstaffuser", "zed", "--role", "support", stdout=StringIO())

    monkeypatch.setenv("DJANGO_STAFF_PASSWORD", "12345678")
    with pytest.raises(CommandError):
        call_command("createstaffuser", "zed", "--role", "support", stdout=StringIO())

    make_staff("zed", "support")
    monkeypatch.setenv("DJANGO_STAFF_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match="already exists"):
        call_command("createstaffuser", "zed", "--role", "admin", stdout=StringIO())


# ---------------------------------------------------------------------------- static files


def test_the_demo_serves_admin_static_files(client, settings):
    settings.ENVIRONMENT = "dev"
    response = client.get("/static/security/copy_key.js")
    assert response.status_code == 200
    assert client.get("/static/admin/css/base.css").status_code == 200
    assert client.get("/static/../config/settings.py").status_code in (400, 404)


def test_outside_dev_static_files_are_left_to_the_front_server(client, settings):
    settings.ENVIRONMENT = "prod"
    assert client.get("/static/admin/css/base.css").status_code == 404
