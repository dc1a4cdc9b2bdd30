"""Subscription on the API: a client's writes, `Subscription/[id]/$status`, `$topic-list`.

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
from directory.errors import Conflict, NotFound
from security.context import context_of
from subscriptions import notify, topics
from subscriptions.models import Channel
from subscriptions.resource import RESOURCE_TYPE, accepted

from . import authorization

__all__ = ["INTERACTIONS", "RESOURCE_TYPE", "capability", "checked", "status", "topic_list"]

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
        "topic-list",
        f"{BACKPORT}/backport-subscriptiontopic-list",
        "/Subscription/$topic-list",
        "The canonical URL of every topic this server offers (a Parameters resource)",
    ),
)


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
            "Topic-based subscriptions (Subscriptions R5 Backport IG): rest-hook channel, "
            "id-only, full-resource or empty payloads. A client sees and changes only its own "
            "Subscriptions; notifications carry only types its scopes let it read."
        ),
    }
