"""The subscription topics this server offers, declared once as data.

R4 has no SubscriptionTopic resource: the Subscriptions Backport IG has an R4 server name its
topics by canonical URL, list them at `Subscription/$topic-list` and in the CapabilityStatement
(extension `capabilitystatement-subscriptiontopic-canonical` on the Subscription resource).
One topic per directory type: any create, update or delete of a resource of that type. A
subscriber narrows it with filter criteria (`backport-filter-criteria`), `Type?search`, evaluated
by the search engine against the changed resource.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from directory.registry import SUPPORTED_TYPES

INTERACTIONS = ("create", "update", "delete")


@dataclass(frozen=True)
class Topic:
    url: str
    resource_type: str
    interactions: tuple[str, ...] = INTERACTIONS

    @property
    def title(self) -> str:
        return f"{self.resource_type} created, updated or deleted"


def _slug(resource_type: str) -> str:
    """`PractitionerRole` -> `practitioner-role`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", resource_type).lower()


def topics() -> dict[str, Topic]:
    """Every topic by canonical URL, in SUPPORTED_TYPES order."""
    base = settings.SUBSCRIPTIONS_TOPIC_BASE.rstrip("/")
    found = (Topic(f"{base}/{_slug(t)}-change", t) for t in SUPPORTED_TYPES)
    return {topic.url: topic for topic in found}


def topic(url: str) -> Topic | None:
    return topics().get(url)


def for_type(resource_type: str) -> list[str]:
    """Canonical URLs of the topics a change of `resource_type` triggers."""
    return [t.url for t in topics().values() if t.resource_type == resource_type]
