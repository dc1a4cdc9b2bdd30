"""The Subscription resource a client writes: checked, its secrets taken out, its channel saved.

A client's POST or PUT of a Subscription goes through `accepted()`: the content is checked
against what this server offers (a known topic, a rest-hook channel to an allowed endpoint or,
when SUBSCRIPTION_EMAIL_ENABLED, an email channel to one `mailto:` address,
payload and filter criteria it can honour), the channel headers are encrypted into the
`Channel` and masked in the stored resource, and the status is the server's to set (`requested`
until the handshake succeeds; a client may only ask for `off`). The write itself goes through
`directory.storage`, whose change listener (`saved()`) stores the channel in the same
transaction; a Subscription written any other way (a batch entry, say) finds no accepted
content there and is refused, so no Subscription exists without its owner and checked channel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import transaction

from directory import storage
from directory.errors import InvalidRequest, InvalidResource
from directory.events import Change
from directory.models import Resource
from directory.search.params import parse as parse_search
from directory.validation import validate_resource
from security.models import ApiClient

from . import channels, topics
from .models import Channel, Event

RESOURCE_TYPE = "Subscription"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FILTER_CRITERIA = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT_PERIOD = BACKPORT + "backport-heartbeat-period"
TIMEOUT = BACKPORT + "backport-timeout"
MAX_COUNT = BACKPORT + "backport-max-count"
PROFILE = BACKPORT + "backport-subscription"
PAYLOAD_CODES = ("empty", "id-only", "full-resource")
PAYLOAD_TYPES = ("application/fhir+json", "application/json")
MAX_FILTERS = 10


@dataclass
class Accepted:
    logical_id: str
    owner: ApiClient
    fields: dict  # Channel fields
    by_client: bool = True  # False: the server changing the status


_accepted: ContextVar[Accepted | None] = ContextVar("subscription_accepted", default=None)


def _invalid(message: str, expression: str) -> InvalidResource:
    return InvalidResource(message, expression=[expression])


@contextmanager
def accepted(content: dict, owner: ApiClient, logical_id: str) -> Iterator[dict]:
    """Check a client's Subscription; yield the content to store (headers masked)."""
    if not isinstance(content, dict):
        raise InvalidRequest("A resource must be a JSON object")
    validate_resource(RESOURCE_TYPE, content)  # structure first: the checks below can trust it
    previous = Channel.objects.filter(logical_id=logical_id).first()
    fields, stored = _check(content, previous)
    token = _accepted.set(Accepted(logical_id, owner, fields))
    try:
        yield stored
    finally:
        _accepted.reset(token)


def _check(content: dict, previous: Channel | None) -> tuple[dict, dict]:
    topic = topics.topic(content.get("criteria", ""))
    if topic is None:
        raise _invalid(
            "Subscription.criteria must be the canonical URL of a topic this server offers "
            "(Subscription/$topic-list)",
            "Subscription.criteria",
        )
    channel = content.get("channel") or {}
    channel_type, attach = _channel(channel)
    pairs = _headers(channel.get("header") or [], previous)
    if channel_type == Channel.EMAIL and pairs:
        raise _invalid("An email channel sends no headers", "Subscription.channel.header")
    fields = {
        "topic": topic.url,
        "filters": json.dumps(_filters(content, topic)),
        "payload": _payload(channel, channel_type),
        "endpoint": channel.get("endpoint") or "",
        "channel_type": channel_type,
        "email_attach": attach,
        "headers_encrypted": channels.encrypt_headers(pairs),
        "heartbeat_seconds": _extension(channel, HEARTBEAT_PERIOD, "valueUnsignedInt"),
        "timeout_seconds": _bounded(channel, TIMEOUT, settings.SUBSCRIPTIONS_TIMEOUT_SECONDS),
        "max_count": _bounded(channel, MAX_COUNT, settings.SUBSCRIPTIONS_MAX_COUNT),
        "end": _end(content),
        "status": Channel.OFF if content.get("status") == Channel.OFF else Channel.REQUESTED,
    }
    if fields["heartbeat_seconds"] is not None:
        fields["heartbeat_seconds"] = max(
            fields["heartbeat_seconds"], settings.SUBSCRIPTIONS_MIN_HEARTBEAT_SECONDS
        )
    stored = json.loads(json.dumps(content))
    stored["status"] = fields["status"]
    stored["channel"]["header"] = channels.masked(pairs)
    if not pairs:
        stored["channel"].pop("header")
    return fields, stored


def _channel(channel: dict) -> tuple[str, bool]:
    """The channel type, and (email) whether the notification Bundle is attached."""
    channel_type = channel.get("type")
    endpoint = channel.get("endpoint") or ""
    try:
        if channel_type == Channel.REST_HOOK:
            channels.check_endpoint(endpoint)
            return channel_type, False
        if channel_type == Channel.EMAIL and settings.SUBSCRIPTION_EMAIL_ENABLED:
            channels.check_mailto(endpoint)
            return channel_type, _email_attach(channel.get("payload"))
    except channels.EndpointRefused as exc:
        raise _invalid(str(exc), "Subscription.channel.endpoint") from None
    offered = "rest-hook or email" if settings.SUBSCRIPTION_EMAIL_ENABLED else "rest-hook"
    raise _invalid(f"Subscription.channel.type must be {offered}", "Subscription.channel.type")


def _email_attach(mime: str | None) -> bool:
    """Email (Backport IG, channels): `text/plain`, or `text/plain;attach=application/fhir+json`
    for the notification Bundle attached; the body is always plain text."""
    if mime is None:
        return False
    kind, _, parameters = mime.partition(";")
    attach = parameters.replace(" ", "")
    if kind.strip() != "text/plain" or attach not in ("", "attach=application/fhir+json"):
        raise _invalid(
            "An email channel's payload must be text/plain or "
            "text/plain;attach=application/fhir+json",
            "Subscription.channel.payload",
        )
    return bool(attach)


def _headers(lines: list, previous: Channel | None) -> list[tuple[str, str]]:
    """The headers to keep: a masked value the client sent back keeps the stored secret."""
    try:
        pairs = channels.parse_headers(lines)
    except ValueError as exc:
        raise _invalid(str(exc), "Subscription.channel.header") from None
    old = dict(channels.decrypt_headers(previous.headers_encrypted)) if previous else {}
    kept = []
    for name, value in pairs:
        if value == channels.MASK:
            if name not in old:
                raise _invalid(
                    f"channel.header '{name}' has no stored value to keep; send the value",
                    "Subscription.channel.header",
                )
            value = old[name]
        kept.append((name, value))
    return kept


def _filters(content: dict, topic: topics.Topic) -> list[str]:
    found = [
        e.get("valueString", "")
        for e in (content.get("_criteria") or {}).get("extension") or []
        if e.get("url") == FILTER_CRITERIA
    ]
    if len(found) > MAX_FILTERS:
        raise _invalid(f"At most {MAX_FILTERS} filter criteria", "Subscription.criteria")
    for criteria in found:
        resource_type, pairs = split_criteria(criteria)
        if resource_type != topic.resource_type or not pairs:
            raise _invalid(
                f"Filter criteria must read '{topic.resource_type}?param=value' for this topic",
                "Subscription.criteria",
            )
        try:
            parse_search(resource_type, pairs, strict=True, filters_only=True)
        except InvalidRequest as exc:
            raise _invalid(f"Filter criteria: {exc}", "Subscription.criteria") from None
    return found


def split_criteria(criteria: str) -> tuple[str, list[tuple[str, str]]]:
    resource_type, _, query = criteria.partition("?")
    return resource_type.strip(), parse_qsl(query, keep_blank_values=True)


def _payload(channel: dict, channel_type: str) -> str:
    mime = channel.get("payload")
    rest_mime = mime is None or mime.split(";")[0].strip() in PAYLOAD_TYPES
    if channel_type == Channel.REST_HOOK and not rest_mime:
        raise _invalid(
            "channel.payload must be application/fhir+json", "Subscription.channel.payload"
        )
    content = _extension(channel.get("_payload") or {}, PAYLOAD_CONTENT, "valueCode")
    if content is None:
        return "id-only"
    if content not in PAYLOAD_CODES:
        raise _invalid(
            "backport-payload-content must be empty, id-only or full-resource",
            "Subscription.channel.payload",
        )
    if channel_type == Channel.EMAIL and content == "full-resource":
        # Email crosses servers this one does not control, often unencrypted, and stays in
        # mailboxes: it carries references only, never the resources themselves.
        raise _invalid(
            "An email channel carries empty or id-only content, never full-resource",
            "Subscription.channel.payload",
        )
    return content


def _end(content: dict) -> datetime | None:
    """Subscription.end as an aware datetime (validated as an instant already), or None."""
    from django.utils.dateparse import parse_datetime

    text = content.get("end")
    moment = parse_datetime(text) if isinstance(text, str) else None
    if text and (moment is None or moment.tzinfo is None):
        raise _invalid("Subscription.end must be an instant with a time zone", "Subscription.end")
    return moment


def _extension(element: dict, url: str, value_key: str) -> Any:
    for extension in element.get("extension") or []:
        if extension.get("url") == url:
            return extension.get(value_key)
    return None


def _bounded(channel: dict, url: str, ceiling: int) -> int:
    value = _extension(channel, url, "valuePositiveInt" if url == MAX_COUNT else "valueUnsignedInt")
    if not isinstance(value, int) or value <= 0:
        return ceiling
    return min(value, ceiling)


# ---------------------------------------------------------------- the storage listener


def saved(change: Change) -> None:
    """A Subscription was written or deleted (inside the write's transaction)."""
    if change.interaction == "delete":
        # The row stays (status off) so its owner alone can still read the history.
        Channel.objects.filter(logical_id=change.logical_id).update(status=Channel.OFF)
        Event.objects.filter(channel__logical_id=change.logical_id).delete()
        return
    pending = _accepted.get()
    if pending is None or pending.logical_id != change.logical_id:
        raise InvalidRequest(
            "A Subscription is created or updated on its own (POST or PUT Subscription), "
            "not in a batch or transaction",
            code="not-supported",
        )
    fields = pending.fields
    channel, created = Channel.objects.get_or_create(
        logical_id=change.logical_id, defaults={"owner": pending.owner, **fields}
    )
    if not created:
        changed_channel = any(getattr(channel, k) != v for k, v in fields.items())
        for key, value in fields.items():
            setattr(channel, key, value)
        if changed_channel and pending.by_client:  # a client's new channel starts afresh
            channel.failures, channel.next_attempt, channel.last_error = 0, None, ""
        channel.save()


def set_status(channel: Channel, status: str, error: str = "") -> None:
    """The server changes a subscription's status: the channel and a new resource version."""
    with transaction.atomic():
        locked = Channel.objects.select_for_update().get(pk=channel.pk)
        if locked.status == status:
            return
        row = storage.read(RESOURCE_TYPE, locked.logical_id)
        content = json.loads(row.live_content())  # read() refuses a deleted one
        content["status"] = status
        if error:
            content["error"] = error  # R4 Subscription.error: the last failure, for the client
        else:
            content.pop("error", None)
        fields = {"status": status}
        token = _accepted.set(Accepted(locked.logical_id, locked.owner, fields, by_client=False))
        try:
            storage.update(RESOURCE_TYPE, locked.logical_id, content)
        finally:
            _accepted.reset(token)
    channel.status = status


def restart(channel: Channel) -> None:
    """Back to `requested` with the failures forgotten and nothing to wait for: the worker
    handshakes again and then sends the events kept (the web admin's "resend")."""
    with transaction.atomic():
        Channel.objects.filter(pk=channel.pk).update(failures=0, next_attempt=None, last_error="")
        channel.failures, channel.next_attempt, channel.last_error = 0, None, ""
        set_status(channel, Channel.REQUESTED)


def owner_of(logical_id: str) -> int | None:
    """The owning client's pk, or None when no Subscription has this id."""
    return Channel.objects.filter(logical_id=logical_id).values_list("owner_id", flat=True).first()


def topic_type_of(logical_id: str) -> str | None:
    """The resource type the Subscription's topic is about; None when there is no such channel."""
    url = Channel.objects.filter(logical_id=logical_id).values_list("topic", flat=True).first()
    found = topics.topic(url) if url is not None else None
    return found.resource_type if found else None


def stored(logical_id: str) -> bool:
    """Whether a Subscription resource (live or deleted) has this id."""
    return Resource.objects.filter(resource_type=RESOURCE_TYPE, logical_id=logical_id).exists()


def owned_ids(client: ApiClient) -> list[str]:
    return list(Channel.objects.filter(owner=client).values_list("logical_id", flat=True))
