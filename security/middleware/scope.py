"""Check 'scope': the token's grants (cut to its client's) must cover the requested interaction."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import Resolver404, resolve

from directory.registry import RESOURCE_TYPES
from fhirapi.routes import Route, routes_by_pattern

from ..context import SecurityContext
from ..refusal import Refusal
from ..scopes import describe, effective_grants, permits
from .base import CheckMiddleware

ROUTES_BY_PATTERN = routes_by_pattern()
FHIR_NAMESPACE = "fhirapi"


@dataclass(frozen=True)
class Endpoint:
    interaction: str
    resource_type: str  # "" at system level
    resource_id: str  # "" unless instance level


def endpoint_of(request) -> Endpoint | None:
    """The FHIR interaction a request asks for, from the routing table; None if none matches."""
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    if match.namespace != FHIR_NAMESPACE:
        return None
    route: Route | None = ROUTES_BY_PATTERN.get(match.url_name, {}).get(request.method)
    if route is None:
        return None
    return Endpoint(
        route.interaction,
        match.kwargs.get("resource_type", ""),
        match.kwargs.get("logical_id", ""),
    )


def is_supported(endpoint: Endpoint) -> bool:
    return not endpoint.resource_type or endpoint.resource_type in RESOURCE_TYPES


class ScopeMiddleware(CheckMiddleware):
    """Fills the context's interaction and refuses "scope-missing" when the grants fall short."""

    applies_to_metadata = False

    def check(self, request, context: SecurityContext) -> None:
        endpoint = endpoint_of(request)
        # Unrouted paths, unsupported types and wrong methods touch no data: the views answer
        # them with 404 / 405, which is more useful to the client than a scope refusal.
        if endpoint is None or not is_supported(endpoint):
            return
        context.interaction = endpoint.interaction
        context.resource_type = endpoint.resource_type
        context.resource_id = endpoint.resource_id
        if context.token_claims is None:
            if settings.SECURITY_REQUIRE_BEARER:
                # No verified token although one is required: the bearer check is missing
                # from the chain. Refuse rather than run unscoped.
                raise Refusal("scope-missing")
            return  # token-less deployment: certificates and API keys alone decide
        grants = effective_grants(context.token_claims, context.client)
        context.granted_scopes = describe(grants)
        if not permits(grants, endpoint.interaction, endpoint.resource_type):
            raise Refusal("scope-missing")
