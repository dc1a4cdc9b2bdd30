"""Notification Bundles as the Subscriptions Backport IG has an R4 server send them.

A Bundle of type `history` whose first entry is a Parameters resource in the
`backport-subscription-status-r4` profile (subscription, topic, status, type,
events-since-subscription-start, notification-event...), followed, for id-only and
full-resource payloads, by one entry per changed resource (full-resource adds the resource).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.utils import timezone

from directory import storage
from directory.errors import FHIRError
from directory.formats import etag, instant

from .models import Channel, Event
from .resource import BACKPORT, RESOURCE_TYPE

STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"
METHODS = {"create": ("POST", "201"), "update": ("PUT", "200"), "delete": ("DELETE", "204")}


def _url(relative: str) -> str:
    base = settings.SUBSCRIPTIONS_FHIR_BASE.rstrip("/")
    return f"{base}/{relative}" if base else relative


def status_parameters(
    channel: Channel,
    kind: str,
    events: Sequence[Event] = (),
    status: str | None = None,
    payload: str | None = None,
) -> dict:
    """The SubscriptionStatus (R4: Parameters) of one notification or `$status` answer."""
    payload = payload or channel.payload
    parameters: list[dict[str, Any]] = [
        {
            "name": "subscription",
            "valueReference": {"reference": _url(f"{RESOURCE_TYPE}/{channel.logical_id}")},
        },
        {"name": "topic", "valueCanonical": channel.topic},
        {"name": "status", "valueCode": status or channel.status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(generated(channel))},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": instant(event.occurred)},
        ]
        if payload != "empty":
            parts.append({"name": "focus", "valueReference": {"reference": _focus(event)}})
        parameters.append({"name": "notification-event", "part": parts})
    if channel.last_error and kind == "query-status":
        parameters.append({"name": "error", "valueCodeableConcept": {"text": channel.last_error}})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }


def generated(channel: Channel) -> int:
    """Events the subscription has had: those numbered (sent at least once) and those waiting."""
    return channel.events_since_start + channel.events.filter(number__isnull=True).count()


def _focus(event: Event) -> str:
    return _url(f"{event.resource_type}/{event.logical_id}/_history/{event.version_id}")


def notification(
    channel: Channel,
    kind: str,
    events: Sequence[Event] = (),
    status: str | None = None,
    payload: str | None = None,
) -> dict:
    """A notification Bundle: handshake, heartbeat, event-notification or (`$events`)
    query-event; `payload` overrides the channel's content (`$events?content=`)."""
    payload = payload or channel.payload
    status_entry = {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": status_parameters(channel, kind, events, status, payload),
        "request": {"method": "GET", "url": _url(f"{RESOURCE_TYPE}/{channel.logical_id}/$status")},
        "response": {"status": "200"},
    }
    entries = [status_entry]
    if payload != "empty":
        entries += [_resource_entry(payload, event) for event in events]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": instant(timezone.now()),
        "entry": entries,
    }


def _resource_entry(payload: str, event: Event) -> dict:
    method, status = METHODS[event.interaction]
    relative = f"{event.resource_type}/{event.logical_id}"
    response: dict[str, str] = {"status": status}
    entry: dict[str, Any] = {
        "fullUrl": _url(relative),
        "request": {"method": method, "url": event.resource_type if method == "POST" else relative},
        "response": response,
    }
    if payload == "full-resource" and event.interaction != "delete":
        content = _version_content(event)
        if content is not None:
            entry["resource"] = content
            response["etag"] = etag(event.version_id)
            response["lastModified"] = content["meta"]["lastUpdated"]
    return entry


def _version_content(event: Event) -> dict | None:
    """The resource as this event wrote it (a later version may exist by the time we send)."""
    try:
        version = storage.vread(event.resource_type, event.logical_id, str(event.version_id))
    except FHIRError:
        return None
    return json.loads(version.live_content())  # vread() refuses a deletion
