"""Top-level URL map: the FHIR API at /fhir/, Django admin at /admin/."""

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import include, path

from directory import admin_site
from fhirapi.urls import base_view as fhir_base_view
from security import charts, dashboard, twofactor
from security.oauth import admin_views as oauth_admin
from security.oauth.urls import oauth_patterns, well_known_patterns

from . import health

# The admin asks for a TOTP code when ADMIN_REQUIRE_OTP is on (always in production).
twofactor.apply_to(admin.site)
# The index links the trust and expiry dashboard (for those allowed to see it).
admin.site.index_template = "admin/security/index.html"


def development_static(request: HttpRequest, path: str) -> HttpResponseBase:
    """Admin CSS and scripts under `make demo`, which runs gunicorn with no front server.

    Only in the dev environment; elsewhere the front server serves STATIC_ROOT (collectstatic).
    """
    if settings.ENVIRONMENT != "dev":
        raise Http404
    return serve_static(request, path, insecure=True)


urlpatterns = [
    # The API first: Django tries patterns in order, and nearly every request is under /fhir.
    # Its .well-known before the API's catch-all, which would otherwise answer it as unknown.
    path("fhir/.well-known/", include(well_known_patterns)),
    # The bare base takes batch and transaction Bundles; other methods answer in FHIR (405).
    path("fhir", fhir_base_view),
    path("fhir/", include("fhirapi.urls")),
    path("healthz", health.liveness),
    path("readyz", health.readiness),
    # Before the admin's own URLs, whose catch-all would otherwise claim it.
    path(
        "admin/trust-dashboard/",
        admin.site.admin_view(dashboard.trust_dashboard),
        name="security-dashboard",
    ),
    path("admin/charts/", admin.site.admin_view(charts.charts_page), name="security-charts"),
    path(
        "admin/fhir-api/",
        admin.site.admin_view(admin_site.overview),
        name=admin_site.OVERVIEW_URL_NAME,
    ),
    path(
        "admin/signing-keys/",
        admin.site.admin_view(oauth_admin.signing_keys),
        name="security-signing-keys",
    ),
    path("admin/", admin.site.urls),
    # The built-in authorization server (security/oauth).
    path("oauth/", include(oauth_patterns)),
    path(".well-known/", include(well_known_patterns)),
    path(f"{settings.STATIC_URL.strip('/')}/<path:path>", development_static),
]

# Errors that escape DRF (unmatched /fhir paths, middleware failures) still answer in FHIR.
handler400 = "fhirapi.errors.bad_request"
handler403 = "fhirapi.errors.permission_denied"
handler404 = "fhirapi.errors.page_not_found"
handler500 = "fhirapi.errors.server_error"
