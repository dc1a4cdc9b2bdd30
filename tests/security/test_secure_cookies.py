"""Cookies set over HTTPS are Secure even where SESSION_COOKIE_SECURE is off (`make demo`)."""

import pytest
from django.test import Client

from config import settings as project_settings

LOGIN = "/admin/login/"
PROXY = "127.0.0.1"  # trusted by the test settings, as nginx's unix socket is in the demo


@pytest.fixture(autouse=True)
def _dev_behind_nginx(settings):
    """The demo's settings: dev, cookies not Secure by setting, the scheme from nginx."""
    settings.MIDDLEWARE = project_settings.MIDDLEWARE  # with the proxy check
    settings.ENVIRONMENT = "dev"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def _login_page_cookies(remote_addr: str = PROXY, **extra):
    response = Client().get(LOGIN, REMOTE_ADDR=remote_addr, **extra)
    assert response.status_code == 200
    assert response.cookies, "the login page sets the CSRF cookie"
    return response.cookies


@pytest.mark.django_db
def test_over_https_via_the_trusted_proxy_every_cookie_is_secure():
    for morsel in _login_page_cookies(HTTP_X_FORWARDED_PROTO="https").values():
        assert morsel["secure"] is True


@pytest.mark.django_db
def test_over_https_directly_every_cookie_is_secure():
    cookies = Client().get(LOGIN, secure=True).cookies
    assert cookies and all(morsel["secure"] is True for morsel in cookies.values())


@pytest.mark.django_db
def test_over_plain_http_dev_cookies_stay_as_configured():
    assert all(not morsel["secure"] for morsel in _login_page_cookies().values())


@pytest.mark.django_db
def test_an_untrusted_peer_cannot_claim_https():
    # Its X-Forwarded-Proto is removed with the other proxy-only headers before anyone reads it.
    cookies = _login_page_cookies("203.0.113.9", HTTP_X_FORWARDED_PROTO="https")
    assert all(not morsel["secure"] for morsel in cookies.values())
