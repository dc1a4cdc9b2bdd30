"""The server side of a Subscription resource, and its outbox of events.

The Subscription resource (type `Subscription` in the directory's storage) is what the client
wrote, with the channel headers masked. `Channel` holds what only the server keeps: the owning
client, the headers (encrypted), the delivery state. `Event` rows are written in the transaction
of the change they announce, marked delivered once the subscriber answered 2xx, and kept
SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS after that for `$events`.
"""

from django.db import models

from security.models import ApiClient


class Channel(models.Model):
    REQUESTED, ACTIVE, ERROR, OFF = "requested", "active", "error", "off"
    STATUSES = [(s, s) for s in (REQUESTED, ACTIVE, ERROR, OFF)]
    REST_HOOK, EMAIL = "rest-hook", "email"

    logical_id = models.CharField(max_length=64, unique=True)  # the Subscription resource's id
    owner = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="subscriptions")
    topic = models.CharField(max_length=255, db_index=True)
    # JSON list of "Type?query" strings (backport-filter-criteria); empty list: no filter.
    filters = models.TextField(default="[]")
    payload = models.CharField(max_length=16)  # empty | id-only | full-resource
    endpoint = models.CharField(max_length=2000)
    channel_type = models.CharField(max_length=16, default=REST_HOOK)
    email_attach = models.BooleanField(default=False)  # email: the Bundle attached as JSON
    headers_encrypted = models.TextField(blank=True)  # Fernet token of a JSON list, or ""
    heartbeat_seconds = models.PositiveIntegerField(null=True)
    timeout_seconds = models.PositiveIntegerField(default=10)
    max_count = models.PositiveIntegerField(default=20)
    end = models.DateTimeField(null=True)
    status = models.CharField(max_length=12, choices=STATUSES, default=REQUESTED)
    events_since_start = models.BigIntegerField(default=0)  # the last event-number given
    failures = models.PositiveIntegerField(default=0)  # consecutive failed deliveries
    next_attempt = models.DateTimeField(null=True)  # back-off: nothing is sent before this
    last_sent = models.DateTimeField(null=True)
    last_error = models.CharField(max_length=300, blank=True)
    # A worker's claim: another worker leaves the channel alone until then (no row lock is held
    # across the HTTP call, so writers recording events never wait on a slow subscriber).
    lease_until = models.DateTimeField(null=True)

    class Meta:
        verbose_name = "subscription"
        indexes = [models.Index(fields=["status", "topic"], name="subs_channel_status_idx")]

    def __str__(self) -> str:
        return f"Subscription/{self.logical_id} ({self.status})"


class Event(models.Model):
    """One change for one subscription: pending until delivered, then kept for `$events`."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="events")
    # The subscription's event-number, given by the worker when it first sends the event (in
    # outbox order): numbering at write time would make every writer wait on the channel row.
    number = models.BigIntegerField(null=True)
    resource_type = models.CharField(max_length=40)
    logical_id = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField()
    interaction = models.CharField(max_length=6)
    occurred = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    delivered = models.DateTimeField(null=True)  # the subscriber's 2xx; null: still to send

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "number"], name="subs_event_number_uniq")
        ]
        # The worker's "pending, oldest first" and the purge of old delivered events.
        indexes = [
            models.Index(fields=["channel", "delivered", "id"], name="subs_event_pending_idx"),
            models.Index(fields=["delivered"], name="subs_event_delivered_idx"),
        ]

    def __str__(self) -> str:
        return f"event {self.number} of {self.channel_id}"
