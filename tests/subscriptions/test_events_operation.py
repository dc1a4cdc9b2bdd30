"""`Subscription/[id]/$events` (Backport IG): the kept events, shaped as the notifications were."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from subscriptions.models import Event
from tests.fhirapi.conftest import send

from .backport_oracle import problems
from .conftest import ALWAYS_SENT, EVENT_PARTS, Received, deliver
from .test_delivery import create, subscribe

pytestmark = pytest.mark.django_db


def three_events(api, subscriber) -> tuple[dict, dict]:
    """A subscription whose three events (create, update, delete) were delivered."""
    created = subscribe(api, subscriber)
    deliver()
    practitioner = create(api, "Practitioner")
    path = f"/fhir/Practitioner/{practitioner['id']}"
    send(api, "PUT", path, {**practitioner, "active": False})
    send(api, "DELETE", path)
    deliver()
    return created, practitioner


def events(api, logical_id: str, query: str = "", status: int = 200) -> dict:
    response = send(api, "GET", f"/fhir/Subscription/{logical_id}/$events{query}")
    assert response.status_code == status, response.content
    return response.json()


def numbers(bundle: dict) -> list[str]:
    received = Received("", {}, bundle)
    return [e["event-number"]["valueString"] for e in received.status["notification-event"]]


def test_events_are_the_notifications_again(api, subscriber):
    created, _ = three_events(api, subscriber)
    [notification] = subscriber.of_kind("event-notification")

    bundle = events(api, created["id"])

    assert problems(bundle, ALWAYS_SENT, (*EVENT_PARTS, "focus")) == []
    assert Received("", {}, bundle).kind == "query-event"
    assert numbers(bundle) == ["1", "2", "3"]
    assert bundle["entry"][1:] == notification.body["entry"][1:]
    sent_parts = notification.status["notification-event"]
    assert Received("", {}, bundle).status["notification-event"] == sent_parts


def test_a_range_and_the_content_asked_for(api, subscriber):
    created, _ = three_events(api, subscriber)

    middle = events(api, created["id"], "?eventsSinceNumber=2&eventsUntilNumber=2")
    assert numbers(middle) == ["2"]
    full = events(api, created["id"], "?eventsUntilNumber=2&content=full-resource")
    assert [e["resource"]["meta"]["versionId"] for e in full["entry"][1:]] == ["1", "2"]
    empty = events(api, created["id"], "?content=empty")
    assert len(empty["entry"]) == 1
    assert problems(empty, ALWAYS_SENT, EVENT_PARTS) == []
    assert all("focus" not in e for e in Received("", {}, empty).status["notification-event"])


def test_pages_are_bounded_and_linked(api, subscriber, settings):
    settings.SUBSCRIPTIONS_EVENTS_PAGE_SIZE = 2
    created, _ = three_events(api, subscriber)

    first = events(api, created["id"], "?content=id-only")

    assert numbers(first) == ["1", "2"]
    [link] = first["link"]
    assert link["relation"] == "next"
    query = "?" + link["url"].split("?", 1)[1]
    assert "eventsSinceNumber=3" in query and "content=id-only" in query
    second = events(api, created["id"], query)
    assert numbers(second) == ["3"] and "link" not in second


def test_only_the_owner_with_read_on_the_topic_type(
    api, subscriber, other_credentials, credentials, token_issuer
):
    created, _ = three_events(api, subscriber)
    other = APIClient()
    other.credentials(HTTP_ACCEPT="application/fhir+json", **other_credentials.meta)
    assert events(other, created["id"], status=404)["resourceType"] == "OperationOutcome"

    token = token_issuer.mint(scope="system/Subscription.rs system/Organization.rs")
    api.credentials(**{**credentials.meta, "HTTP_AUTHORIZATION": f"Bearer {token}"})
    assert events(api, created["id"], status=403)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "query",
    [
        "?eventsSinceNumber=abc",
        "?eventsUntilNumber=-1",
        "?content=everything",
        "?eventsSinceNumber=%D9%A1",  # an Arabic-Indic one: isdigit() but no ASCII,
    ],
)
def test_bad_parameters_are_400(api, subscriber, query):
    created = subscribe(api, subscriber)
    assert events(api, created["id"], query, status=400)["resourceType"] == "OperationOutcome"


def test_unsent_events_have_no_number_yet(api, subscriber):
    created = subscribe(api, subscriber)
    create(api, "Practitioner")  # the handshake has not even been sent

    assert numbers(events(api, created["id"])) == []


def test_kept_for_the_retention_period_then_purged(api, subscriber, settings):
    settings.SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS = 3600
    created, _ = three_events(api, subscriber)
    Event.objects.filter(number=1).update(delivered=timezone.now() - timedelta(hours=2))

    deliver()

    assert numbers(events(api, created["id"])) == ["2", "3"]


def test_no_retention_keeps_nothing(api, subscriber, settings):
    settings.SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS = 0
    created, _ = three_events(api, subscriber)

    assert not Event.objects.exists()
    assert numbers(events(api, created["id"])) == []


def test_a_retention_beyond_the_calendar_keeps_everything(api, subscriber, settings):
    settings.SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS = 10**12
    created, _ = three_events(api, subscriber)

    deliver()

    assert numbers(events(api, created["id"])) == ["1", "2", "3"]
