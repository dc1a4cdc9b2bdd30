"""Who may be notified is decided by the API's decision point, on the owner as it stands now."""

from __future__ import annotations

import pytest

from fhirapi import authorization
from security import keys
from security.models import ApiClient, ApiKey
from subscriptions import policy
from subscriptions.models import Channel, Event

from .conftest import deliver
from .test_delivery import create, pending, subscribe

pytestmark = pytest.mark.django_db


def owner(credentials) -> ApiClient:
    return ApiClient.objects.get(name=credentials.client_name)


def test_the_worker_asks_the_api_decision_point():
    assert policy._decision == [authorization.notification_refusal]


def test_a_retired_key_stops_the_subscription(api, subscriber, credentials):
    subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")
    for key in ApiKey.objects.filter(client=owner(credentials)):
        keys.retire_key(key, actor="test", reason="compromised")

    deliver()

    assert subscriber.of_kind("event-notification") == []
    assert Channel.objects.get().status == "off"
    assert pending().count() == 1  # kept: a new key and a re-request deliver it


def test_a_client_the_api_would_refuse_is_refused_here(credentials):
    client = owner(credentials)
    assert authorization.notification_refusal(client, "n", ["Practitioner"]) is None
    client.allowed_scopes = "system/Organization.rs"
    assert authorization.notification_refusal(client, "n", ["Practitioner"]) == "scope-missing"
    assert authorization.notification_refusal(client, "n", ["Organization"]) is None
    client.status = ApiClient.SUSPENDED
    assert authorization.notification_refusal(client, "n", ["Organization"]) == "client-suspended"


def test_nhs_read_scope_counts_as_the_api_counts_it(credentials, settings):
    client = owner(credentials)
    client.allowed_scopes = "organization/Practitioner.read"
    settings.SECURITY_SCOPE_CONVENTION = "smart"
    assert authorization.notification_refusal(client, "n", ["Practitioner"]) == "scope-missing"
    settings.SECURITY_SCOPE_CONVENTION = "nhs"
    assert authorization.notification_refusal(client, "n", ["Practitioner"]) is None


def test_without_a_registered_decision_nothing_is_sent(api, subscriber, monkeypatch):
    subscribe(api, subscriber)
    monkeypatch.setattr(policy, "_decision", [])

    deliver()

    assert subscriber.received == []
    channel = Channel.objects.get()
    assert channel.status == "requested" and channel.failures == 1
    assert "no authorization decision" in channel.last_error


def test_lost_scope_drops_pending_events_only(api, subscriber, credentials):
    subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")
    deliver()
    create(api, "Practitioner")
    client = owner(credentials)
    client.allowed_scopes = "system/Organization.cruds system/Subscription.cruds"
    client.save()

    deliver()

    assert len(subscriber.of_kind("event-notification")) == 1
    assert not pending().exists()
    assert Event.objects.count() == 1  # the delivered one, kept for its owner's $events
