"""The web admin's subscription page: what each subscription is doing, and two actions.

A list (status, topic, owner, channel, consecutive failures, last delivery, pending events)
and a read-only page per subscription; nothing is edited field by field, since a Subscription
is its owner's resource. The actions write through the services the API and the worker use
(`resource.set_status`, `resource.restart`), so each leaves a new Subscription version its
owner sees, and an admin log entry naming the user. Channel headers and an endpoint's path and
query (which can carry tokens) are never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from directory.errors import FHIRError

from . import resource, topics
from .models import Channel

SHOWN = (
    "logical_id",
    "status",
    "topic",
    "owner",
    "channel_type",
    "endpoint_shown",
    "payload",
    "failures",
    "last_sent",
    "next_attempt",
    "last_error",
    "events_since_start",
    "end",
)


@admin.register(Channel)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "logical_id",
        "status",
        "topic_type",
        "owner",
        "channel_type",
        "failures",
        "last_sent",
        "pending_events",
        "last_error",
    ]
    list_filter = ["status", "channel_type", "topic"]
    search_fields = ["logical_id", "owner__name"]
    list_select_related = ["owner"]
    ordering = ["-pk"]
    fields = SHOWN
    readonly_fields = SHOWN
    actions = ["deactivate", "restart"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Channel]:
        pending = Count("events", filter=Q(events__delivered__isnull=True))
        return super().get_queryset(request).annotate(pending=pending)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a Subscription is created by its client, through the API

    def has_delete_permission(self, request: HttpRequest, obj: Channel | None = None) -> bool:
        return False  # turning it off keeps its history; deleting is its owner's (API)

    @admin.display(description="topic")
    def topic_type(self, obj: Channel) -> str:
        found = topics.topic(obj.topic)
        return found.resource_type if found else obj.topic

    @admin.display(description="pending events", ordering="pending")
    def pending_events(self, obj: Channel) -> int:
        return getattr(obj, "pending", 0)

    @admin.display(description="endpoint")
    def endpoint_shown(self, obj: Channel) -> str:
        return endpoint_shown(obj)

    @admin.action(description="Turn off the selected subscriptions", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        done = self._each(request, queryset.exclude(status=Channel.OFF), _turn_off, "turned off")
        self.message_user(request, f"{done} subscription(s) turned off.", messages.SUCCESS)

    @admin.action(
        description="Resend: reset errors and ask for the handshake again", permissions=["change"]
    )
    def restart(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        done = self._each(request, queryset, resource.restart, "requested again, errors reset")
        self.message_user(request, f"{done} subscription(s) requested again.", messages.SUCCESS)

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Channel],
        act: Callable[[Channel], None],
        what: str,
    ) -> int:
        done = 0
        for channel in queryset:
            try:
                act(channel)
            except FHIRError:  # its Subscription was deleted by its owner: nothing to change
                self.message_user(
                    request, f"Subscription/{channel.logical_id} is deleted.", messages.WARNING
                )
                continue
            self.log_change(request, channel, f"Subscription {what} in the web admin")
            done += 1
        return done


def _turn_off(channel: Channel) -> None:
    resource.set_status(channel, Channel.OFF)


def endpoint_shown(channel: Channel) -> str:
    """Where it goes, without what may be secret: scheme and host; an email's domain."""
    if channel.channel_type == Channel.EMAIL:
        return f"mailto:…@{channel.endpoint.rpartition('@')[2]}"
    parts = urlsplit(channel.endpoint)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
