"""The DRF views: one generic view per URL shape, dispatching by HTTP method via routes.ROUTES."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from directory import customparams

from . import handlers, throttling
from .authorization import ScopePermission, check_response
from .parsers import too_large
from .routes import Route


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class FHIRView(APIView):
    """Dispatches each allowed HTTP method to the handler its route names.

    What the client may do is decided by ScopePermission (in DRF's `initial`, before the handler)
    and by the handlers' calls into fhirapi.authorization for the types a request reads.
    """

    routes: dict[str, Route] = {}
    permission_classes = [ScopePermission]
    # Per-client rate and in-flight limits (fhirapi/throttling.py), checked in `initial`.
    throttle_classes = throttling.THROTTLES

    def route_for(self, request: Request) -> Route | None:
        """The route of the request's method; None for a method this URL does not route (405)."""
        # HEAD is GET without the body (RFC 9110 9.3.2); the WSGI server drops the body.
        return self.routes.get("GET" if request.method == "HEAD" else request.method or "")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            throttling.release_slot(request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Custom search parameters another worker stored (rate-limited generation check).
        customparams.ensure_fresh()
        # Refuse an oversized body before anyone reads it.
        if _declared_length(request) > settings.FHIR_MAX_BODY_BYTES:
            raise too_large()

    def dispatch_route(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        route = self.route_for(request)
        if route is None:  # as_view's http_method_names admits routed methods only
            raise MethodNotAllowed(request.method or "")
        response = route.handler(request, *args, **kwargs)
        check_response(request, response.data)
        return response

    get = head = post = put = delete = dispatch_route

    @classmethod
    def for_routes(cls, routes: dict[str, Route]) -> Callable[..., HttpResponseBase]:
        methods = [m.lower() for m in routes]
        if "GET" in routes:
            methods.append("head")
        return cls.as_view(routes=routes, http_method_names=methods)


class UnknownEndpointView(APIView):
    """Anything under /fhir/ that no route matches: a 404 OperationOutcome for every method."""

    def dispatch_any(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return handlers.unknown_endpoint(request)

    get = post = put = patch = delete = head = options = dispatch_any
