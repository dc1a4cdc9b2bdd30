"""The outbox's probe: a create asks whether anyone subscribes within its own statement.

Whatever the answer, the events are those the outbox wrote before: one per requested or active
subscription on the topic, none for subscriptions that are off or in error, none for other types.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory import storage
from security.models import ApiClient
from subscriptions import outbox, topics
from subscriptions.models import Channel, Event
from tests.factories import OrganizationFactory, PractitionerFactory

pytestmark = pytest.mark.django_db


def _channel(status: str, resource_type: str = "Organization") -> Channel:
    owner, _ = ApiClient.objects.get_or_create(name="probe owner")
    return Channel.objects.create(
        logical_id=f"sub-{status}-{resource_type}",
        owner=owner,
        topic=topics.for_type(resource_type)[0],
        payload="id-only",
        endpoint="https://subscriber.localhost/hook",
        status=status,
    )


def _create(resource_type: str, factory) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        logical_id = storage.create(resource_type, factory.build()).row.logical_id
    return logical_id, [q["sql"] for q in captured.captured_queries]


def _events(logical_id: str) -> list[str]:
    return sorted(
        Event.objects.filter(logical_id=logical_id).values_list("channel__status", flat=True)
    )


@pytest.mark.parametrize("status", [Channel.REQUESTED, Channel.ACTIVE])
def test_a_live_subscription_on_the_topic_gets_its_event(status):
    _channel(status)
    _channel(Channel.OFF)
    _channel(Channel.ERROR, "Practitioner")
    logical_id, _ = _create("Organization", OrganizationFactory)
    assert _events(logical_id) == [status]


def test_no_live_subscription_no_event_and_no_lookup_of_its_own():
    _channel(Channel.OFF)
    _channel(Channel.ERROR)
    _channel(Channel.ACTIVE, "Practitioner")  # another topic
    logical_id, statements = _create("Organization", OrganizationFactory)
    assert _events(logical_id) == []
    lookups = [sql for sql in statements if "subscriptions_channel" in sql]
    if connection.vendor == "postgresql":
        # Asked within the write itself, and answered false: no separate lookup follows.
        assert len(lookups) == 1 and lookups[0].startswith("WITH r AS (INSERT"), lookups
    else:
        assert len(lookups) == 1 and lookups[0].startswith("SELECT"), lookups


def test_the_other_topic_still_gets_its_events():
    _channel(Channel.ACTIVE, "Practitioner")
    logical_id, _ = _create("Practitioner", PractitionerFactory)
    assert _events(logical_id) == [Channel.ACTIVE]


def test_the_probe_asks_what_the_outbox_looks_up():
    change = storage.events.Change("Organization", "x", 1, "create")
    sql, params = outbox.probe([change])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        assert not cursor.fetchone()[0]
        _channel(Channel.REQUESTED)
        cursor.execute(f"SELECT {sql}", params)
        assert cursor.fetchone()[0]
    # A Subscription's own change always reaches the outbox (its channel is being written).
    assert outbox.probe([storage.events.Change("Subscription", "s", 1, "create")]) is None
