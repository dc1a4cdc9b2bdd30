"""The DRF views: one generic view per URL shape, dispatching by HTTP method via routes.ROUTES."""

from __future__ import annotations

from django.conf import settings
from rest_framework.views import APIView

from . import handlers, throttling
from .parsers import too_large
from .routes import Route


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class FHIRView(APIView):
    """Dispatches each allowed HTTP method to the handler its route names."""

    routes: dict[str, Route] = {}
    # Per-client rate and in-flight limits (fhirapi/throttling.py), checked in `initial`.
    throttle_classes = throttling.THROTTLES

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            throttling.release_slot(request)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Refuse an oversized body before anyone reads it.
        if _declared_length(request) > settings.FHIR_MAX_BODY_BYTES:
            raise too_large()

    def dispatch_route(self, request, *args, **kwargs):
        return self.routes[request.method].handler(request, *args, **kwargs)

    get = post = put = delete = dispatch_route

    @classmethod
    def for_routes(cls, routes: dict[str, Route]):
        methods = [m.lower() for m in routes]
        return cls.as_view(routes=routes, http_method_names=methods)


class UnknownEndpointView(APIView):
    """Anything under /fhir/ that no route matches: a 404 OperationOutcome for every method."""

    def dispatch_any(self, request, *args, **kwargs):
        return handlers.unknown_endpoint(request)

    get = post = put = patch = delete = head = options = dispatch_any
