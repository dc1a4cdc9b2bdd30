"""/fhir runs without the web admin's middleware (session, CSRF, user, OTP, messages, frame
header) and still gets every security check and header; the admin keeps all of them."""

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from security.models import RequestAudit

pytestmark = pytest.mark.django_db

# (`user` is set on /fhir too: by the API layer, to None.)
ADMIN_ONLY = ("session", "csrf_processing_done", "_messages")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def test_fhir_requests_skip_the_admin_middleware(api):
    response = api.get("/fhir/Practitioner", HTTP_COOKIE="sessionid=abc; csrftoken=x")
    assert response.status_code == 200
    for attribute in ADMIN_ONLY:
        assert not hasattr(response.wsgi_request, attribute), attribute
    assert not response.cookies


def test_fhir_still_gets_every_security_check_and_header(credentials, settings):
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    for name, meta, status in (
        ("no certificate", {k: v for k, v in credentials.meta.items() if "SSL" not in k}, 401),
        ("no key", {k: v for k, v in credentials.meta.items() if k != "HTTP_X_API_KEY"}, 401),
        ("no token", {k: v for k, v in credentials.meta.items() if k != "HTTP_AUTHORIZATION"}, 401),
        ("all three", credentials.meta, 200),
    ):
        response = APIClient().get("/fhir/Practitioner", **meta)
        assert response.status_code == status, name
        for header, value in SECURITY_HEADERS.items():
            assert response[header] == value, (name, header)
        assert response["Strict-Transport-Security"].startswith("max-age=")
    outcomes = list(RequestAudit.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["cert-missing", "key-missing", "token-missing", "ok"]


def test_the_admin_keeps_session_csrf_user_and_frame_header():
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/admin/login/")
    assert page.status_code == 200
    for attribute in ("session", "user"):
        assert hasattr(page.wsgi_request, attribute), attribute
    assert "csrftoken" in page.cookies
    assert page["X-Frame-Options"] == "DENY"
    refused = browser.post("/admin/login/", {"username": "x", "password": "y"})
    assert refused.status_code == 403  # no CSRF token: Django's CSRF check still runs here


def test_the_admin_middleware_classes_are_still_djangos_own():
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.middleware.csrf import CsrfViewMiddleware
    from django.utils.module_loading import import_string

    loaded = [import_string(name) for name in settings.MIDDLEWARE]
    for base in (SessionMiddleware, CsrfViewMiddleware, AuthenticationMiddleware):
        assert any(issubclass(cls, base) for cls in loaded), base
