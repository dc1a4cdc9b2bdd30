"""The delivery worker: handshakes, event notifications and heartbeats, by rest-hook or email.

Run by `manage.py deliversubscriptions` (deploy/systemd, deploy/k8s), never by a request.
Each pass takes every requested or active subscription that is due and not leased by another
worker, and:

1. stops it (`off`) when its `end` has passed or the API would turn its owning client away
   (suspended, no usable key), and errors it out, dropping its unsent events, when the client
   may no longer read the topic's type: the API's decision point (subscriptions/policy.py)
   judges, so nothing is sent to an endpoint whose owner could not read it through the API now;
2. checks the endpoint again (SSRF, DNS rebinding: the connection goes to the checked address;
   email: one `mailto:` address, and the channel still enabled);
3. sends the handshake of a `requested` subscription (2xx makes it `active`), else its pending
   events, oldest first, `max_count` per notification, else a heartbeat when one is due.

Events are marked delivered only after a 2xx (email: the mail server took the message), then
kept SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS for `$events` and purged. A failure backs off
exponentially (SUBSCRIPTIONS_RETRY_BASE_SECONDS doubling up to SUBSCRIPTIONS_RETRY_MAX_SECONDS)
and after SUBSCRIPTIONS_MAX_FAILURES consecutive failures the subscription is `error` (its
events stay until it is requested again and delivered). Logs name the subscription, never
headers, bodies, addresses or the endpoint's path and query (which can carry tokens).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from security.models import ApiClient

from . import channels, mailer, notify, policy, resource
from .models import Channel, Event

log = logging.getLogger(__name__)
Target = channels.Target | str  # rest-hook: the checked HTTP target; email: the address
LEASE_MARGIN_SECONDS = 30
MAX_BATCHES_PER_PASS = 50  # one busy subscription cannot starve the others for long
NOTIFY = "subscription-notification"
# Refusals that mean the client may not use the API at all: its subscriptions stop.
STOPPING_REASONS = frozenset({"client-unknown", "client-suspended", "key-invalid"})
ERROR_TEXT = {"scope-missing": "The client may no longer read the topic's resource type"}


@dataclass
class PassStats:
    handshakes: int = 0
    notifications: int = 0
    events: int = 0
    heartbeats: int = 0
    failures: int = 0
    stopped: list[str] = field(default_factory=list)


DeliveryFailed = channels.DeliveryFailed


def run_pass() -> PassStats:
    """One pass over every due subscription."""
    stats = PassStats()
    now = timezone.now()
    _purge(now)
    due = Channel.objects.filter(
        Q(status__in=(Channel.REQUESTED, Channel.ACTIVE)),
        Q(next_attempt__isnull=True) | Q(next_attempt__lte=now),
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
    ).order_by("pk")
    for channel in due:
        if _claim(channel):
            try:
                _serve(channel, stats)
            except Exception:  # one broken subscription must not stop the others' deliveries
                stats.failures += 1
                log.exception("Subscription/%s: delivery pass failed", channel.logical_id)
            finally:
                Channel.objects.filter(pk=channel.pk).update(lease_until=None)
    return stats


def _purge(now: datetime) -> None:
    """Delivered events past SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS leave `$events` (indexed)."""
    try:
        oldest = now - timedelta(seconds=settings.SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS)
    except OverflowError:  # a retention longer than the calendar: nothing is old enough
        return
    Event.objects.filter(delivered__lt=oldest).delete()


def _claim(channel: Channel) -> bool:
    """Take the lease unless another worker took it first (one conditional UPDATE)."""
    now = timezone.now()
    lease = now + timedelta(seconds=channel.timeout_seconds * 2 + LEASE_MARGIN_SECONDS)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return Channel.objects.filter(free, pk=channel.pk).update(lease_until=lease) == 1


def _serve(channel: Channel, stats: PassStats) -> None:
    channel.refresh_from_db()
    if channel.end is not None and channel.end <= timezone.now():
        resource.set_status(channel, Channel.OFF)  # Subscription.end: the client's own limit
        stats.stopped.append(channel.logical_id)
        return
    if not _owner_may_receive(channel, stats):
        return
    try:
        target = _target(channel)
        if channel.status == Channel.REQUESTED:
            _send(channel, target, notify.notification(channel, "handshake", status="requested"))
            resource.set_status(channel, Channel.ACTIVE)
            stats.handshakes += 1
            _delivered(channel)
        _send_events(channel, target, stats)
        if _heartbeat_due(channel):
            _send(channel, target, notify.notification(channel, "heartbeat"))
            stats.heartbeats += 1
            _delivered(channel)
    except (DeliveryFailed, channels.EndpointRefused) as exc:
        stats.failures += 1
        _failed(channel, str(exc))


def _target(channel: Channel) -> Target:
    """Where this channel's notifications go, checked again now: an HTTP target or an address."""
    if channel.channel_type == Channel.EMAIL:
        if not settings.SUBSCRIPTION_EMAIL_ENABLED:
            raise DeliveryFailed("the email channel is not enabled on this server")
        return channels.check_mailto(channel.endpoint)
    return channels.check_endpoint(channel.endpoint)


def _send_events(channel: Channel, target: Target, stats: PassStats) -> None:
    for _ in range(MAX_BATCHES_PER_PASS):
        pending = channel.events.filter(delivered__isnull=True).order_by("pk")
        events = _numbered(channel, list(pending[: channel.max_count]))
        if not events:
            return
        sent = Event.objects.filter(pk__in=[e.pk for e in events])
        sent.update(attempts=_attempts_plus_one())
        _send(channel, target, notify.notification(channel, "event-notification", events))
        # Only now, after the subscriber's 2xx: at-least-once. Kept a while for `$events`.
        if settings.SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS > 0:
            sent.update(delivered=timezone.now())
        else:
            sent.delete()
        stats.notifications += 1
        stats.events += len(events)
        _delivered(channel)


def _numbered(channel: Channel, events: list[Event]) -> list[Event]:
    """Give events their event-number the first time they are sent, in outbox order.

    Only the worker holding the channel's lease numbers, so the numbers never repeat; an event
    sent again after a failure keeps its number, which is how a subscriber recognises it.
    """
    fresh = [event for event in events if event.number is None]
    if not fresh:
        return events
    with transaction.atomic():
        start = Channel.objects.values_list("events_since_start", flat=True).get(pk=channel.pk)
        for offset, event in enumerate(fresh, start=1):
            event.number = start + offset
        Event.objects.bulk_update(fresh, ["number"])
        channel.events_since_start = start + len(fresh)
        Channel.objects.filter(pk=channel.pk).update(events_since_start=channel.events_since_start)
    return events


def _attempts_plus_one() -> CombinedExpression:
    return F("attempts") + 1


def _heartbeat_due(channel: Channel) -> bool:
    if channel.status != Channel.ACTIVE or not channel.heartbeat_seconds:
        return False
    if channel.last_sent is None:
        return True
    return timezone.now() - channel.last_sent >= timedelta(seconds=channel.heartbeat_seconds)


def _owner_may_receive(channel: Channel, stats: PassStats) -> bool:
    """Asked of the API's decision point on the client as it is now, not as it subscribed.

    A client the API would turn away (suspended, no usable key) has its subscriptions turned
    `off`, their unsent events kept for a re-request; one whose scopes no longer cover the
    topic's type has it `error` and its unsent events dropped.
    """
    owner = ApiClient.objects.filter(pk=channel.owner_id).first()
    topic_types = [_topic_type(channel)]
    reason = "client-unknown" if owner is None else policy.refusal(owner, NOTIFY, topic_types)
    if reason is None:
        return True
    if reason == policy.UNREGISTERED:  # a worker started without the API app: retry, keep all
        stats.failures += 1
        _failed(channel, "no authorization decision is available to the worker")
        return False
    stats.stopped.append(channel.logical_id)
    log.info("Subscription/%s stopped: %s", channel.logical_id, reason)
    if reason in STOPPING_REASONS:
        resource.set_status(channel, Channel.OFF)
        return False
    with transaction.atomic():
        channel.events.filter(delivered__isnull=True).delete()
        channel.last_error = ERROR_TEXT.get(reason, "The client may not receive notifications")
        channel.save(update_fields=["last_error"])
        resource.set_status(channel, Channel.ERROR, channel.last_error)
    return False


def _topic_type(channel: Channel) -> str:
    from .topics import topic

    found = topic(channel.topic)
    return found.resource_type if found else ""


def _delivered(channel: Channel) -> None:
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(
        failures=0, next_attempt=None, last_sent=now, last_error=""
    )
    channel.failures, channel.next_attempt, channel.last_sent, channel.last_error = 0, None, now, ""


def _failed(channel: Channel, reason: str) -> None:
    failures = channel.failures + 1
    delay = min(
        settings.SUBSCRIPTIONS_RETRY_BASE_SECONDS * 2 ** (failures - 1),
        settings.SUBSCRIPTIONS_RETRY_MAX_SECONDS,
    )
    delay *= random.uniform(0.8, 1.0)  # noqa: S311 - jitter: many subscriptions to one host do not align
    next_attempt = timezone.now() + timedelta(seconds=delay)
    Channel.objects.filter(pk=channel.pk).update(
        failures=failures, next_attempt=next_attempt, last_error=reason[:300]
    )
    channel.failures, channel.next_attempt, channel.last_error = failures, next_attempt, reason
    log.warning(
        "Subscription/%s not delivered (%s), failure %d, next try in %.1fs",
        channel.logical_id,
        reason,
        failures,
        delay,
    )
    if failures >= settings.SUBSCRIPTIONS_MAX_FAILURES:
        resource.set_status(channel, Channel.ERROR, reason[:300])


# ---------------------------------------------------------------- HTTP


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address, the certificate verified against the URL's host name.

    The standard library's client, not requests: connecting to an address fixed beforehand
    while verifying the certificate for the URL's name is one overridden `connect` here, and
    needs a custom transport adapter and pool in requests/urllib3.
    """

    def __init__(self, target: channels.Target, timeout: float) -> None:
        tls = _tls_context()
        super().__init__(target.host, target.port, timeout=timeout, context=tls)
        self._address = target.address
        self._tls = tls  # the base class keeps it too, but privately

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: channels.Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.SUBSCRIPTIONS_CA_FILE or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _send(channel: Channel, target: Target, bundle: dict) -> None:
    """Send the Bundle; DeliveryFailed unless the subscriber answers 2xx (the mail server
    accepts the message)."""
    if isinstance(target, str):
        mailer.send(channel, target, bundle)
        return
    try:
        headers = channels.decrypt_headers(channel.headers_encrypted)
    except channels.InvalidToken:
        raise DeliveryFailed("the stored channel headers cannot be decrypted") from None
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout=channel.timeout_seconds)
    body = json.dumps(bundle, separators=(",", ":")).encode()
    try:
        connection.putrequest("POST", target.path)
        for name, value in [*headers, *_fixed_headers(len(body))]:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        response.read(65536)  # drain a little; the body is never logged or kept
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(f"connection failed: {type(exc).__name__}") from None
    finally:
        connection.close()
    if not 200 <= status < 300:
        raise DeliveryFailed(f"the endpoint answered {status}")


def _fixed_headers(length: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/fhir+json; charset=utf-8"),
        ("Content-Length", str(length)),
        ("User-Agent", "fhir-directory-subscriptions"),
    ]
