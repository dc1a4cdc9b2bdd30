"""Top-level URL map: the FHIR API at /fhir/, Django admin at /admin/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("fhir/", include("fhirapi.urls")),
]
