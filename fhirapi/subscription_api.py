"""Subscription on the API: a client's writes, `Subscription/[id]/$status`, `$events`,
`$topic-list`.

Whose Subscription it is and what its owner may subscribe to is decided in authorization.py;
what a Subscription may say is checked in subscriptions/resource.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from directory import storage
from directory.errors import Conflict, InvalidRequest, NotFound
from security.context import context_of
from subscriptions import notify, topics
from subscriptions.models import Channel
from subscriptions.resource import PAYLOAD_CODES, RESOURCE_TYPE, accepted

from . import authorization, links

__all__ = [
    "INTERACTIONS",
    "RESOURCE_TYPE",
    "capability",
    "checked",
    "events",
    "status",
    "topic_list",
]

# The interactions a client may use on Subscription (the decision point's table): the
# CapabilityStatement and the OpenAPI document list these and no other.
INTERACTIONS = authorization.SUBSCRIPTION_INTERACTIONS
# Its operations: (name, OperationDefinition canonical, path below the base, summary).
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition"
OPERATIONS = (
    (
        "status",
        f"{BACKPORT}/backport-subscription-status",
        "/Subscription/{logical_id}/$status",
        "The subscription's status: a searchset Bundle holding one SubscriptionStatus",
    ),
    (
        "events",
        f"{BACKPORT}/backport-subscription-events",
        "/Subscription/{logical_id}/$events",
        "Past events of the subscription: a history Bundle shaped as its notifications",
    ),
    (
        "topic-list",
        f"{BACKPORT}/backport-subscriptiontopic-list",
        "/Subscription/$topic-list",
        "The canonical URL of every topic this server offers (a Parameters resource)",
    ),
)


# Query parameters of the operations (OpenAPI), as the Backport IG's OperationDefinitions name them.
EVENTS_PARAMETERS = (
    ("eventsSinceNumber", "The first event-number returned (inclusive)", "integer"),
    ("eventsUntilNumber", "The last event-number returned (inclusive)", "integer"),
    ("content", "empty, id-only or full-resource (default: the subscription's)", "string"),
)
QUERY_PARAMETERS = {"events": EVENTS_PARAMETERS}


@contextmanager
def checked(
    request: Request, resource_type: str, content: dict[str, Any], logical_id: str
) -> Iterator[dict[str, Any]]:
    """Around a create or update: the content to store (a Subscription's is checked first)."""
    if resource_type != RESOURCE_TYPE:
        yield content
        return
    storage.check_id(logical_id)
    with client_write(request, content, logical_id) as stored:
        yield stored


@contextmanager
def client_write(
    request: Request, content: dict[str, Any], logical_id: str
) -> Iterator[dict[str, Any]]:
    """Around a client's create or update of a Subscription: the content to store."""
    client = context_of(request).client
    if client is None:  # unreachable: authorize_subscription refused a client-less write
        raise authorization.Denied("subscription-interaction")
    topic = topics.topic(content.get("criteria", "")) if isinstance(content, dict) else None
    if topic is not None:
        authorization.authorize_subscription_topic(request, topic.resource_type)
    owned = Channel.objects.filter(owner=client).exclude(logical_id=logical_id)
    if owned.exclude(status=Channel.OFF).count() >= settings.SUBSCRIPTIONS_PER_CLIENT:
        raise Conflict(
            f"A client may hold {settings.SUBSCRIPTIONS_PER_CLIENT} subscriptions that are not "
            "off; delete or turn off one first"
        )
    with accepted(content, client, logical_id) as checked:
        yield checked


def status(request: Request, resource_type: str, logical_id: str) -> Response:
    """`$status`: a searchset Bundle holding the subscription's SubscriptionStatus."""
    channel = Channel.objects.filter(logical_id=logical_id).exclude(status=Channel.OFF).first()
    if channel is None and not Channel.objects.filter(logical_id=logical_id).exists():
        raise NotFound(f"Subscription/{logical_id[:64]} is not known")
    channel = channel or Channel.objects.get(logical_id=logical_id)
    parameters = notify.status_parameters(channel, "query-status")
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": parameters, "search": {"mode": "match"}}],
    }
    return Response(bundle)


def events(request: Request, resource_type: str, logical_id: str) -> Response:
    """`$events` (Backport IG): the kept events from eventsSinceNumber to eventsUntilNumber, at
    most SUBSCRIPTIONS_EVENTS_PAGE_SIZE, as a `query-event` notification Bundle; a `next` link
    when more are kept. An event has a number once the worker first sent it."""
    channel = Channel.objects.get(logical_id=logical_id)  # the permission found it, owned
    since = _event_number(request, "eventsSinceNumber")
    until = _event_number(request, "eventsUntilNumber")
    content = request.query_params.get("content") or None
    if content is not None and content not in PAYLOAD_CODES:
        raise InvalidRequest("content must be empty, id-only or full-resource")
    kept = channel.events.filter(number__isnull=False).order_by("number")
    if since is not None:
        kept = kept.filter(number__gte=since)
    if until is not None:
        kept = kept.filter(number__lte=until)
    page_size = max(settings.SUBSCRIPTIONS_EVENTS_PAGE_SIZE, 1)
    found = list(kept[: page_size + 1])
    page = found[:page_size]
    bundle = notify.notification(channel, "query-event", page, payload=content)
    if len(found) > page_size:
        bundle["link"] = [{"relation": "next", "url": _next_page(request, page[-1].number)}]
    return Response(bundle)


def _event_number(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidRequest(f"{name} must be an event number (a non-negative integer)")
    return int(text)


def _next_page(request: Request, last: int | None) -> str:
    params = [
        (name, str(request.query_params.get(name)))
        for name in request.query_params
        if name != "eventsSinceNumber"
    ]
    path = request.path.rsplit("/Subscription/", 1)[1]
    url = f"{links.base_url(request)}/Subscription/{path}"
    return links.with_query(url, [("eventsSinceNumber", str((last or 0) + 1)), *params])


def topic_list(request: Request, resource_type: str) -> Response:
    """`$topic-list` (Backport IG): the canonical URL of every topic this server offers."""
    return Response(
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "subscription-topic-canonical", "valueCanonical": url}
                for url in topics.topics()
            ],
        }
    )


CAPABILITY_TOPIC = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical"
)


def _channels() -> str:
    return (
        "rest-hook and email channels"
        if settings.SUBSCRIPTION_EMAIL_ENABLED
        else "rest-hook channel"
    )


def capability() -> dict:
    """What the CapabilityStatement says of Subscription beyond the generated entry (whose
    interactions capability.py cuts to INTERACTIONS)."""
    return {
        "extension": [{"url": CAPABILITY_TOPIC, "valueCanonical": url} for url in topics.topics()],
        "supportedProfile": [
            "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
            "backport-subscription"
        ],
        "conditionalCreate": "conditional-create" in INTERACTIONS,
        "conditionalUpdate": "conditional-update" in INTERACTIONS,
        "conditionalDelete": "single" if "conditional-delete" in INTERACTIONS else "not-supported",
        "operation": [
            {"name": name, "definition": definition} for name, definition, _, _ in OPERATIONS
        ],
        "documentation": (
            "Topic-based subscriptions (Subscriptions R5 Backport IG): "
            f"{_channels()}; id-only, full-resource or empty payloads (email: id-only or "
            "empty); past events by $events. A client sees and changes only its own "
            "Subscriptions; notifications carry only types its scopes let it read."
        ),
    }
