"""Every response carries no-store caching, nosniff, HSTS and frame denial: API or admin, success
or error, including 404s, 500s and the health probes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import include, path

from tests.factories import FACTORIES


def boom(request):
    """Test only: an unhandled error, for the 500 pages."""
    raise RuntimeError("boom")


urlpatterns = [
    path("boom", boom),
    path("fhir/boom", boom),
    path("", include("config.urls")),
]
handler404 = "fhirapi.errors.page_not_found"
handler500 = "fhirapi.errors.server_error"


def assert_protective_headers(response) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Strict-Transport-Security"].startswith("max-age=")
    assert int(response["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31536000
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


@pytest.fixture
def client(db):
    return Client(raise_request_exception=False, headers={"Accept": "application/fhir+json"})


def test_api_success(client):
    organization = FACTORIES["Organization"].create()
    response = client.get(f"/fhir/Organization/{organization['id']}")
    assert response.status_code == 200
    assert_protective_headers(response)


def test_api_search_and_metadata(client):
    for url in ("/fhir/Organization", "/fhir/metadata"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_protective_headers(response)


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/fhir/Organization/missing", 404),
        ("get", "/fhir/NoSuchType", 404),
        ("get", "/fhir", 405),  # the base takes only POSTed Bundles
        ("post", "/fhir/Organization", 415),
        ("delete", "/fhir/metadata", 405),
    ],
)
def test_api_errors(client, method, url, status):
    response = getattr(client, method)(url)
    assert response.status_code == status
    assert_protective_headers(response)


def test_admin_login_page(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert_protective_headers(response)


def test_admin_404(admin_client):
    response = admin_client.get("/admin/no/such/page/")
    assert response.status_code == 404
    assert_protective_headers(response)


def test_non_api_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert_protective_headers(response)


@pytest.mark.parametrize("url", ["/boom", "/fhir/boom"])
def test_500(client, settings, url):
    settings.ROOT_URLCONF = __name__
    response = client.get(url)
    assert response.status_code == 500
    assert_protective_headers(response)


@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_health_endpoints(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert_protective_headers(response)


def test_admin_pages_keep_same_origin_referrers_so_browser_forms_pass_csrf(client):
    # With no-referrer, browsers post forms with `Origin: null`, which Django's CSRF check refuses.
    assert client.get("/admin/login/")["Referrer-Policy"] == "same-origin"


def test_api_responses_send_no_referrer(client):
    assert client.get("/fhir/metadata")["Referrer-Policy"] == "no-referrer"
