"""URLs under /fhir/, generated from the routing table."""

from django.urls import re_path

from .routes import PATTERNS, routes_by_pattern
from .views import FHIRView, UnknownEndpointView

app_name = "fhirapi"

urlpatterns = [
    re_path(PATTERNS[key], FHIRView.for_routes(routes), name=key)
    for key, routes in routes_by_pattern().items()
    if routes
]
urlpatterns.append(re_path(r"", UnknownEndpointView.as_view(), name="unknown"))

# The base without its trailing slash (`POST /fhir`), mounted by the project's URL map.
base_view = FHIRView.for_routes(routes_by_pattern()["system"])
