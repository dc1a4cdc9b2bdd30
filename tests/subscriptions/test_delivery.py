"""Subscriptions end to end: API writes, the outbox, the worker, a real subscriber on loopback."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from directory import bulkimport
from directory.models import Resource, ResourceVersion
from security.models import ApiClient, RequestAudit
from subscriptions.models import Channel, Event
from tests.factories import make_npi
from tests.fhirapi.conftest import body_for, send

from .conftest import SUBSCRIBER_SECRET, deliver, subscription_body

pytestmark = pytest.mark.django_db


def pending():
    return Event.objects.filter(delivered__isnull=True)


def subscribe(api, subscriber, **kwargs) -> dict:
    response = send(api, "POST", "/fhir/Subscription", subscription_body(subscriber.url, **kwargs))
    assert response.status_code == 201, response.content
    return response.json()


def create(api, resource_type: str, **fields) -> dict:
    response = send(api, "POST", f"/fhir/{resource_type}", body_for(resource_type, **fields))
    assert response.status_code == 201, response.content
    return response.json()


def test_handshake_activates_and_headers_reach_only_the_subscriber(api, subscriber):
    created = subscribe(api, subscriber)
    assert created["status"] == "requested"
    assert created["channel"]["header"] == ["Authorization: ****"]

    deliver()

    [handshake] = subscriber.received
    assert handshake.kind == "handshake"
    assert handshake.path == "/hook?token=abc"
    assert handshake.headers["Authorization"] == SUBSCRIBER_SECRET
    assert handshake.body["type"] == "history"
    assert handshake.status["subscription"]["reference"].endswith(f"Subscription/{created['id']}")
    read = send(api, "GET", f"/fhir/Subscription/{created['id']}").json()
    assert read["status"] == "active"
    assert read["channel"]["header"] == ["Authorization: ****"]
    # The secret is nowhere but in the encrypted channel row.
    stored = "".join(ResourceVersion.objects.values_list("content", flat=True))
    assert SUBSCRIBER_SECRET not in stored
    assert SUBSCRIBER_SECRET not in Channel.objects.get().headers_encrypted


def test_create_update_delete_id_only(api, subscriber):
    subscribe(api, subscriber)
    deliver()
    practitioner = create(api, "Practitioner")
    path = f"/fhir/Practitioner/{practitioner['id']}"
    updated = {**practitioner, "active": False}
    assert send(api, "PUT", path, updated).status_code == 200
    assert send(api, "DELETE", path).status_code == 204
    create(api, "Organization")  # another topic: nothing for this subscription

    deliver()

    [notification] = subscriber.of_kind("event-notification")
    events = notification.status["notification-event"]
    assert [e["event-number"]["valueString"] for e in events] == ["1", "2", "3"]
    assert notification.status["events-since-subscription-start"] == "3"
    entries = notification.body["entry"][1:]
    assert [e["request"]["method"] for e in entries] == ["POST", "PUT", "DELETE"]
    assert all("resource" not in e for e in entries)
    assert entries[1]["fullUrl"] == f"https://directory.test{path}"
    assert events[1]["focus"]["valueReference"]["reference"].endswith(f"{path}/_history/2")
    assert not pending().exists()  # delivered
    assert Event.objects.filter(delivered__isnull=False).count() == 3  # kept for $events


def test_full_resource_payload_carries_each_version(api, subscriber):
    subscribe(api, subscriber, payload="full-resource")
    deliver()
    practitioner = create(api, "Practitioner")
    path = f"/fhir/Practitioner/{practitioner['id']}"
    send(api, "PUT", path, {**practitioner, "active": False})

    deliver()

    [notification] = subscriber.of_kind("event-notification")
    first, second = (e["resource"] for e in notification.body["entry"][1:])
    assert first["meta"]["versionId"] == "1" and first.get("active") is not False
    assert second["meta"]["versionId"] == "2" and second["active"] is False


def test_filter_criteria_are_respected(api, subscriber):
    system = "http://hl7.org/fhir/sid/us-npi"
    subscribe(api, subscriber, filters=(f"Practitioner?identifier={system}|1234567893",))
    deliver()
    create(api, "Practitioner")  # another NPI
    wanted = create(api, "Practitioner", identifier=[{"system": system, "value": "1234567893"}])

    deliver()

    [notification] = subscriber.of_kind("event-notification")
    [entry] = notification.body["entry"][1:]
    assert entry["fullUrl"].endswith(f"Practitioner/{wanted['id']}")


def test_role_filter_by_organization(api, subscriber):
    organization = f"Organization/{create(api, 'Organization')['id']}"
    other = f"Organization/{create(api, 'Organization')['id']}"
    role = create(api, "PractitionerRole", organization={"reference": organization})
    subscribe(
        api,
        subscriber,
        resource_type="PractitionerRole",
        filters=(f"PractitionerRole?organization={organization}",),
    )
    deliver()
    send(api, "PUT", f"/fhir/PractitionerRole/{role['id']}", {**role, "active": False})
    create(api, "PractitionerRole", organization={"reference": other})

    deliver()

    [notification] = subscriber.of_kind("event-notification")
    assert [e["fullUrl"].rsplit("/", 1)[1] for e in notification.body["entry"][1:]] == [role["id"]]


def test_retry_after_500_then_delivered_once_acknowledged(api, subscriber):
    subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")
    subscriber.answers = [500]

    deliver()
    channel = Channel.objects.get()
    assert channel.failures == 1 and channel.status == "active"
    assert Event.objects.get().attempts == 1  # kept: not acknowledged

    deliver()  # retry base 0: due again at once

    attempts = subscriber.of_kind("event-notification")
    assert len(attempts) == 2
    assert attempts[0].body["entry"][1:] == attempts[1].body["entry"][1:]
    assert not pending().exists()
    assert Channel.objects.get().failures == 0


def test_back_off_grows_and_errors_out(api, subscriber, settings):
    settings.SUBSCRIPTIONS_RETRY_BASE_SECONDS = 60.0
    settings.SUBSCRIPTIONS_MAX_FAILURES = 2
    created = subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")
    subscriber.answers = [503, 503]

    deliver()
    first = Channel.objects.get().next_attempt - timezone.now()
    assert timedelta(seconds=40) < first <= timedelta(seconds=60)
    deliver()  # not due yet: nothing sent
    assert len(subscriber.of_kind("event-notification")) == 1
    Channel.objects.update(next_attempt=timezone.now())
    deliver()

    channel = Channel.objects.get()
    assert channel.status == "error" and channel.failures == 2
    assert channel.last_error == "the endpoint answered 503"
    read = send(api, "GET", f"/fhir/Subscription/{created['id']}").json()
    assert read["status"] == "error" and "503" in read["error"]
    assert Event.objects.count() == 1  # kept until delivered


def test_status_operation(api, subscriber):
    created = subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")

    response = send(api, "GET", f"/fhir/Subscription/{created['id']}/$status")

    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "searchset"
    parameters = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
    assert parameters["type"]["valueCode"] == "query-status"
    assert parameters["status"]["valueCode"] == "active"
    assert parameters["events-since-subscription-start"]["valueString"] == "1"


def test_heartbeat_when_idle(api, subscriber, settings):
    settings.SUBSCRIPTIONS_MIN_HEARTBEAT_SECONDS = 10
    subscribe(api, subscriber, heartbeat=10)
    deliver()
    deliver()
    assert subscriber.of_kind("heartbeat") == []  # just sent the handshake
    Channel.objects.update(last_sent=timezone.now() - timedelta(seconds=11))

    deliver()

    [heartbeat] = subscriber.of_kind("heartbeat")
    assert heartbeat.status["status"] == "active"
    assert len(heartbeat.body["entry"]) == 1


def test_no_notification_for_a_type_the_client_may_no_longer_read(api, subscriber, credentials):
    created = subscribe(api, subscriber, payload="full-resource")
    deliver()
    create(api, "Practitioner")
    client = ApiClient.objects.get(name=credentials.client_name)
    client.allowed_scopes = "system/Organization.cruds system/Subscription.cruds"
    client.save()

    deliver()

    assert subscriber.of_kind("event-notification") == []
    assert not Event.objects.exists()
    assert Channel.objects.get(logical_id=created["id"]).status == "error"


def test_subscribing_needs_read_on_the_topic_type(api, subscriber, credentials, token_issuer):
    token = token_issuer.mint(scope="system/Subscription.cruds system/Organization.rs")
    api.credentials(**{**credentials.meta, "HTTP_AUTHORIZATION": f"Bearer {token}"})

    response = send(api, "POST", "/fhir/Subscription", subscription_body(subscriber.url))

    assert response.status_code == 403
    assert not Channel.objects.exists()
    ok = send(
        api,
        "POST",
        "/fhir/Subscription",
        subscription_body(subscriber.url, resource_type="Organization"),
    )
    assert ok.status_code == 201


def test_suspended_client_subscriptions_stop(api, subscriber, credentials):
    subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")
    ApiClient.objects.filter(name=credentials.client_name).update(status=ApiClient.SUSPENDED)

    deliver()

    assert subscriber.of_kind("event-notification") == []
    assert Channel.objects.get().status == "off"


def test_channel_headers_never_logged(api, subscriber, caplog):
    caplog.set_level(logging.DEBUG)
    created = subscribe(api, subscriber)
    subscriber.answers = [500]
    deliver()
    deliver()
    create(api, "Practitioner")
    subscriber.answers = [401]
    deliver()
    send(api, "GET", f"/fhir/Subscription/{created['id']}")

    assert "not delivered" in caplog.text  # the failure was logged...
    assert "subscriber-secret" not in caplog.text  # ...without the header
    assert "token=abc" not in caplog.text  # nor the endpoint's query
    audits = json.dumps(list(RequestAudit.objects.values()), default=str)
    assert "subscriber-secret" not in audits


def test_masked_header_sent_back_keeps_the_secret(api, subscriber):
    created = subscribe(api, subscriber)
    path = f"/fhir/Subscription/{created['id']}"
    changed = {**created, "reason": "Renamed"}
    assert send(api, "PUT", path, changed).status_code == 200

    deliver()

    assert subscriber.received[0].headers["Authorization"] == SUBSCRIBER_SECRET


def test_deleted_subscription_gets_nothing(api, subscriber):
    created = subscribe(api, subscriber)
    deliver()
    assert send(api, "DELETE", f"/fhir/Subscription/{created['id']}").status_code == 204
    create(api, "Practitioner")

    deliver()

    assert len(subscriber.received) == 1  # the handshake only
    assert Resource.objects.get(logical_id=created["id"]).deleted


def test_a_failed_write_leaves_no_event(api, subscriber):
    subscribe(api, subscriber)
    deliver()
    bad = body_for("PractitionerRole", practitioner={"reference": "Practitioner/missing"})
    assert send(api, "POST", "/fhir/PractitionerRole", bad).status_code == 422
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": body_for("Practitioner"),
                "request": {"method": "POST", "url": "Practitioner"},
            },
            {"resource": bad, "request": {"method": "POST", "url": "PractitionerRole"}},
        ],
    }
    assert send(api, "POST", "/fhir", bundle).status_code == 422
    assert not Event.objects.exists()

    bundle["entry"].pop()
    assert send(api, "POST", "/fhir", bundle).status_code == 200
    assert Event.objects.count() == 1


def test_a_change_before_the_handshake_is_delivered_after_it(api, subscriber):
    subscribe(api, subscriber)
    practitioner = create(api, "Practitioner")

    deliver()

    assert [r.kind for r in subscriber.received] == ["handshake", "event-notification"]
    assert subscriber.received[1].body["entry"][1]["fullUrl"].endswith(practitioner["id"])


def test_a_subscription_past_its_end_stops(api, subscriber):
    created = subscribe(api, subscriber, end="2020-01-01T00:00:00Z")
    create(api, "Practitioner")

    deliver()

    assert subscriber.received == []
    assert send(api, "GET", f"/fhir/Subscription/{created['id']}").json()["status"] == "off"


def test_a_crash_after_sending_redelivers_the_same_events(api, subscriber, monkeypatch):
    from subscriptions import delivery

    subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")
    original = delivery._send

    def send_then_crash(*args):
        original(*args)
        raise SystemExit("worker killed before it recorded the delivery")

    monkeypatch.setattr(delivery, "_send", send_then_crash)
    with pytest.raises(SystemExit):
        deliver()
    monkeypatch.setattr(delivery, "_send", original)
    deliver()

    first, second = subscriber.of_kind("event-notification")
    assert first.status["notification-event"] == second.status["notification-event"]
    assert not pending().exists()


def test_a_leased_subscription_is_left_to_its_worker(api, subscriber):
    subscribe(api, subscriber)
    Channel.objects.update(lease_until=timezone.now() + timedelta(minutes=1))

    deliver()

    assert subscriber.received == []
    Channel.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # it died
    deliver()
    assert [r.kind for r in subscriber.received] == ["handshake"]


def test_one_broken_subscription_does_not_stop_the_others(api, subscriber, monkeypatch):
    from subscriptions import delivery

    broken = subscribe(api, subscriber)
    subscribe(api, subscriber)
    original = delivery._serve

    def serve(channel, stats):
        if channel.logical_id == broken["id"]:
            raise ValueError("unexpected")
        original(channel, stats)

    monkeypatch.setattr(delivery, "_serve", serve)
    deliver()

    assert len(subscriber.of_kind("handshake")) == 1
    assert Channel.objects.get(logical_id=broken["id"]).lease_until is None


def test_an_import_batch_files_an_event_per_matching_resource_reading_channels_once(
    api, subscriber, tmp_path
):
    system = "http://hl7.org/fhir/sid/us-npi"
    wanted = make_npi(9_301)
    subscribe(api, subscriber, filters=(f"Practitioner?identifier={system}|{wanted}",))
    deliver()  # the handshake: the channel is active
    lines = [
        {
            "resourceType": "Practitioner",
            "id": f"imp-{n}",
            "identifier": [{"system": system, "value": make_npi(9_300 + n)}],
        }
        for n in range(6)
    ]
    path = tmp_path / "batch.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    with CaptureQueriesContext(connection) as queries:
        summary = bulkimport.import_file(path, bulkimport.ErrorFile(io.StringIO()), batch_size=6)

    assert summary.stored == 6
    # Only the resource the filter names gets an event, in the batch's transaction.
    assert list(pending().values_list("logical_id", flat=True)) == ["imp-1"]
    channel_reads = [q for q in queries if 'FROM "subscriptions_channel"' in q["sql"]]
    assert len(channel_reads) == 1  # one batch, one read of the topic's subscriptions
