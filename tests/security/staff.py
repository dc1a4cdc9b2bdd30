"""Staff users in the three admin roles, and sign-in helpers, for the web admin tests."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from security.roles import ROLE_BY_OPTION

PASSWORD = "correct horse battery staple 42"
LOGIN_URL = "/admin/login/"


@pytest.fixture
def fast_passwords(settings):
    """A cheap hasher: lockout tests sign in a dozen times, PBKDF2 would dominate their time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_staff(username: str, role: str, password: str = PASSWORD):
    """A staff user whose only permissions come from the group of `role` (admin|support|auditor)."""
    user = get_user_model().objects.create_user(username, password=password, is_staff=True)
    user.groups.add(Group.objects.get(name=ROLE_BY_OPTION[role]))
    return user


def login_form(username: str, password: str = PASSWORD, **extra) -> dict:
    return {"username": username, "password": password, "next": "/admin/", **extra}


def signed_in(response) -> bool:
    """Whether a login POST was accepted: the admin redirects to `next` only on success."""
    return response.status_code == 302 and response["Location"] == "/admin/"


def permissions(*labels: str) -> list:
    """Permission rows by "app_label.codename"; every label must exist."""
    from django.contrib.auth.models import Permission

    rows = []
    for label in labels:
        app_label, codename = label.split(".")
        rows.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return rows


def signed_in_as(user):
    """A test client with `user` signed in (no OTP: the tests run with it not required)."""
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    return browser
