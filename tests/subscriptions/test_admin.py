"""The web admin's subscription page: the list, and actions written through the services."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from subscriptions.models import Channel
from tests.fhirapi.conftest import send
from tests.security.staff import make_staff, signed_in_as

from .conftest import SUBSCRIBER_SECRET, deliver
from .test_delivery import create, pending, subscribe

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:subscriptions_channel_changelist"


def act(browser, action: str, *channels: Channel):
    return browser.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [c.pk for c in channels]},
    )


@pytest.fixture
def administrator():
    return signed_in_as(make_staff("subs-admin", "admin"))


def test_the_list_shows_state_and_no_secret(api, subscriber, administrator, credentials):
    created = subscribe(api, subscriber)
    deliver()
    subscriber.answers = [500]
    create(api, "Practitioner")
    deliver()

    page = administrator.get(reverse(CHANGELIST)).content.decode()

    assert created["id"] in page and credentials.client_name in page
    assert "Practitioner" in page and "the endpoint answered 500" in page
    assert SUBSCRIBER_SECRET not in page and "token=abc" not in page
    detail = administrator.get(
        reverse("admin:subscriptions_channel_change", args=[Channel.objects.get().pk])
    ).content.decode()
    assert "http://127.0.0.1:" in detail
    assert SUBSCRIBER_SECRET not in detail and "token=abc" not in detail and "/hook" not in detail


def test_deactivate_writes_a_version_the_owner_sees(api, subscriber, administrator):
    created = subscribe(api, subscriber)
    deliver()

    response = act(administrator, "deactivate", Channel.objects.get())

    assert response.status_code == 302
    read = send(api, "GET", f"/fhir/Subscription/{created['id']}").json()
    assert read["status"] == "off" and read["meta"]["versionId"] == "3"
    assert LogEntry.objects.get().change_message.endswith("turned off in the web admin")
    create(api, "Practitioner")
    deliver()
    assert subscriber.of_kind("event-notification") == []


def test_resend_resets_errors_and_delivers_the_kept_events(
    api, subscriber, administrator, settings
):
    settings.SUBSCRIPTIONS_MAX_FAILURES = 1
    created = subscribe(api, subscriber)
    deliver()
    create(api, "Practitioner")
    subscriber.answers = [503]
    deliver()
    assert Channel.objects.get().status == "error"

    act(administrator, "restart", Channel.objects.get())

    channel = Channel.objects.get()
    assert (channel.status, channel.failures, channel.last_error) == ("requested", 0, "")
    read = send(api, "GET", f"/fhir/Subscription/{created['id']}").json()
    assert read["status"] == "requested" and "error" not in read
    deliver()
    assert [r.kind for r in subscriber.received[-2:]] == ["handshake", "event-notification"]
    assert not pending().exists()


def test_a_deleted_subscription_cannot_be_restarted(api, subscriber, administrator):
    created = subscribe(api, subscriber)
    send(api, "DELETE", f"/fhir/Subscription/{created['id']}")

    response = act(administrator, "restart", Channel.objects.get())

    assert response.status_code == 302
    assert Channel.objects.get().status == "off"


def test_support_staff_may_not_see_it_and_nobody_adds_or_deletes(api, subscriber, administrator):
    subscribe(api, subscriber)
    support = signed_in_as(make_staff("subs-support", "support"))
    assert support.get(reverse(CHANGELIST)).status_code == 403
    assert administrator.get(reverse("admin:subscriptions_channel_add")).status_code == 403
    pk = Channel.objects.get().pk
    assert (
        administrator.get(reverse("admin:subscriptions_channel_delete", args=[pk])).status_code
        == 403
    )
    act(administrator, "delete_selected", Channel.objects.get())  # not offered: ignored
    assert Channel.objects.exists()
