"""A support engineer rotates and retires a client's key in a real browser, while the running API
is asked over HTTP which keys it accepts: old and new during the grace, only the new one after
the old is retired."""

from __future__ import annotations

import time

import pytest
import requests
from django.contrib.auth.models import Permission, User

from security.keys import prefix_of
from tests.browser_support import sign_in as sign_in_as

from .conftest import HEADERS_MIDDLEWARE, use_middleware

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

USERNAME, PASSWORD = "sam.support", "a long test-only passphrase"
SUPPORT_PERMISSIONS = [
    "view_apiclient",
    "view_apikey",
    "view_keyevent",
    "view_requestaudit",
    "issue_apikey",
    "rotate_apikey",
    "retire_apikey",
]
CACHE_SECONDS = 1
FHIR_JSON = "application/fhir+json"


@pytest.fixture
def browser_context_options():
    # The page copies the new key to the clipboard; the test reads it back.
    return {"permissions": ["clipboard-read", "clipboard-write"]}


@pytest.fixture
def api_server(live_server, settings, credentials):
    """The live server with the production chain of checks, as a proxy in front would reach it."""
    settings.ENVIRONMENT = "test"
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    settings.SECURITY_CLIENT_CERT_FORMAT = "nginx"
    settings.SECURITY_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]
    settings.SECURITY_CACHE_SECONDS = CACHE_SECONDS
    settings.ADMIN_REQUIRE_OTP = False
    rest = [m for m in settings.MIDDLEWARE if m != HEADERS_MIDDLEWARE]
    chain = [HEADERS_MIDDLEWARE, *settings.SECURITY_MIDDLEWARE, *rest]
    restore = use_middleware(live_server, settings, chain)
    yield live_server.url
    restore()


@pytest.fixture
def support_user():
    user = User.objects.create_user(USERNAME, password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="security", codename__in=SUPPORT_PERMISSIONS
        )
    )
    return user


def organizations(base_url, credentials, key):
    """GET /fhir/Organization with the client's certificate and token, and `key`."""
    headers = {**credentials.http, "X-API-Key": key, "Accept": FHIR_JSON}
    return requests.get(f"{base_url}/fhir/Organization", headers=headers, timeout=10)


def sign_in(page):
    sign_in_as(page, USERNAME, "/admin/security/apiclient/", PASSWORD)


def search(page, term):
    page.fill("#searchbar", term)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    return page.locator("#result_list tbody tr")


def key_row(page, prefix):
    return page.locator(f"tr.key-row[data-prefix='{prefix}']")


def test_support_rotates_copies_and_retires_a_key(
    page, api_server, credentials, support_user, tmp_path
):
    old_key = credentials.api_key
    old_prefix = prefix_of(old_key)
    assert organizations(api_server, credentials, old_key).status_code == 200

    sign_in(page)
    by_name = search(page, "Directory test")
    assert by_name.count() == 1
    assert search(page, old_prefix).count() == 1
    page.click(f"#result_list a:text('{credentials.client_name}')")
    page.wait_for_selector("#keys")
    screenshot = tmp_path / "client-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.exists() and screenshot.stat().st_size > 0

    new_key = rotate_with_one_hour_grace(page, old_prefix)
    assert copied_key(page) == new_key
    # During the grace period both keys open the API.
    assert organizations(api_server, credentials, old_key).status_code == 200
    assert organizations(api_server, credentials, new_key).status_code == 200

    page.click("text=Done: back to")
    assert new_key not in page.content()
    assert "rotating until" in key_row(page, old_prefix).inner_text()
    retire(page, old_prefix, "compromised: found in a public repository")

    assert old_key_refused_within(api_server, credentials, old_key, CACHE_SECONDS + 4)
    assert organizations(api_server, credentials, new_key).status_code == 200


def rotate_with_one_hour_grace(page, prefix) -> str:
    key_row(page, prefix).locator("a.rotate-link").click()
    page.check("input[name=grace][value='1h']")
    page.fill("#id_reason", "scheduled rotation")
    page.click("input[type=submit][value='Rotate key']")
    shown = page.locator("#new-key").inner_text().strip()
    assert prefix_of(shown), "the new key is shown in full"
    assert "keeps working until" in page.content()
    return shown


def copied_key(page) -> str:
    page.click("#copy-key")
    page.wait_for_selector("#copy-status:text('Copied')")
    return page.evaluate("navigator.clipboard.readText()")


def retire(page, prefix, reason):
    key_row(page, prefix).locator("a.retire-link").click()
    assert f"within {CACHE_SECONDS} second" in page.content()
    page.fill("#id_reason", reason)
    page.click("input[type=submit][value='Retire key now']")
    page.wait_for_selector(".messagelist")
    assert f"Key {prefix} is retired" in page.locator(".messagelist").inner_text()
    assert "retired" in key_row(page, prefix).inner_text()


def old_key_refused_within(base_url, credentials, key, seconds) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if organizations(base_url, credentials, key).status_code == 401:
            return True
        time.sleep(0.25)
    return False
