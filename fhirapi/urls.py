"""URLs under /fhir/, generated from the routing table."""

from django.urls import re_path

from . import bulk_import, operations, subscription_ops
from .openapi import OpenAPIView
from .routes import PATTERNS, routes_by_pattern
from .views import FHIRView, UnknownEndpointView

app_name = "fhirapi"

# Operations first: `Type/$reindex` would otherwise match the instance pattern.
urlpatterns = (
    operations.urlpatterns
    + subscription_ops.urlpatterns
    + [
        re_path(PATTERNS[key], FHIRView.for_routes(routes), name=key)
        for key, routes in routes_by_pattern().items()
        if routes
    ]
)
# `$import` and its job URLs, ahead of the instance pattern as the operations are.
urlpatterns[:0] = bulk_import.urlpatterns
# Not a FHIR interaction (so not in ROUTES): the OpenAPI description of the interactions.
urlpatterns.append(re_path(r"^openapi\.json$", OpenAPIView.as_view(), name="openapi"))
urlpatterns.append(re_path(r"", UnknownEndpointView.as_view(), name="unknown"))

# The base without its trailing slash (`POST /fhir`), mounted by the project's URL map.
base_view = FHIRView.for_routes(routes_by_pattern()["system"])
