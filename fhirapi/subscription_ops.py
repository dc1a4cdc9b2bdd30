"""The Subscription operations' URLs and their authorization (handlers in subscription_api)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.http.response import HttpResponseBase
from django.urls import re_path
from rest_framework.request import Request
from rest_framework.views import APIView

from security.context import context_of

from . import authorization
from .authorization import ScopePermission, _check_spine_interaction, authorize
from .routes import Route
from .subscription_api import RESOURCE_TYPE, events, status, topic_list
from .views import FHIRView


class SubscriptionOperationPermission(ScopePermission):
    """`$status` is a read of the owner's Subscription; `$events` one that also returns the
    topic's type; `$topic-list` needs a registered client."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        view = cast(FHIRView, view)  # the permission of SubscriptionOperationView only
        route = view.route_for(request)
        if route is None:
            return True
        context = context_of(request)
        context.interaction = route.interaction
        context.resource_type = RESOURCE_TYPE
        context.resource_id = view.kwargs.get("logical_id", "")
        _check_spine_interaction(request, context, route.interaction, RESOURCE_TYPE)
        if route.interaction in ("subscription-status", "subscription-events"):
            authorize(context, route.interaction, {(RESOURCE_TYPE, "r")})
            authorization.authorize_subscription(request, "read", context.resource_id)
        if route.interaction == "subscription-events":
            authorization.authorize_subscription_events(request, context.resource_id)
        elif route.interaction != "subscription-status":
            authorize(context, route.interaction, set())
        return True


class SubscriptionOperationView(FHIRView):
    permission_classes = [SubscriptionOperationPermission]


def _view(route: Route) -> Callable[..., HttpResponseBase]:
    return SubscriptionOperationView.as_view(routes={"GET": route}, http_method_names=["get"])


urlpatterns = [
    re_path(
        r"^(?P<resource_type>Subscription)/\$topic-list$",
        _view(Route("subscription-topic-list", "type", "", "GET", topic_list)),
        name="subscription-topic-list",
    ),
    re_path(
        r"^(?P<resource_type>Subscription)/(?P<logical_id>[A-Za-z0-9\-.]{1,64})/\$status$",
        _view(Route("subscription-status", "instance", "", "GET", status)),
        name="subscription-status",
    ),
    re_path(
        r"^(?P<resource_type>Subscription)/(?P<logical_id>[A-Za-z0-9\-.]{1,64})/\$events$",
        _view(Route("subscription-events", "instance", "", "GET", events)),
        name="subscription-events",
    ),
]
