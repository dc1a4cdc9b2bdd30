"""Top-level URL map: the FHIR API at /fhir/, Django admin at /admin/."""

from django.contrib import admin
from django.urls import include, path

from fhirapi.views import UnknownEndpointView
from security import dashboard, health, twofactor

# The admin asks for a TOTP code when ADMIN_REQUIRE_OTP is on (always in production).
twofactor.apply_to(admin.site)
# The index links the trust and expiry dashboard (for those allowed to see it).
admin.site.index_template = "admin/security/index.html"

urlpatterns = [
    path("healthz", health.liveness),
    path("readyz", health.readiness),
    # Before the admin's own URLs, whose catch-all would otherwise claim it.
    path(
        "admin/trust-dashboard/",
        admin.site.admin_view(dashboard.trust_dashboard),
        name="security-dashboard",
    ),
    path("admin/", admin.site.urls),
    # The bare base has no FHIR meaning; answer in FHIR even with DEBUG on.
    path("fhir", UnknownEndpointView.as_view()),
    path("fhir/", include("fhirapi.urls")),
]

# Errors that escape DRF (unmatched /fhir paths, middleware failures) still answer in FHIR.
handler404 = "fhirapi.errors.page_not_found"
handler500 = "fhirapi.errors.server_error"
