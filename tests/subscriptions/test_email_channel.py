"""The email channel: Django's email backend (locmem here), references only, retried."""

from __future__ import annotations

import json
import smtplib

import pytest
from django.core import mail

from subscriptions.models import Channel, Event
from tests.fhirapi.conftest import body_for, outcome_issue, send

from .backport_oracle import problems
from .conftest import ALWAYS_SENT, EVENT_PARTS, Received, deliver, subscription_body

pytestmark = pytest.mark.django_db
ADDRESS = "directory-changes@subscriber.example"


@pytest.fixture(autouse=True)
def _email(settings):
    settings.SUBSCRIPTION_EMAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SUBSCRIPTIONS_EMAIL_FROM = "directory@server.example"


def email_body(payload: str = "id-only", mime: str = "text/plain", **channel) -> dict:
    body = subscription_body("", payload=payload, headers=())
    body["channel"].update({"type": "email", "endpoint": f"mailto:{ADDRESS}", "payload": mime})
    body["channel"].update(channel)
    return body


def subscribe(api, **kwargs) -> dict:
    response = send(api, "POST", "/fhir/Subscription", email_body(**kwargs))
    assert response.status_code == 201, response.content
    return response.json()


def practitioner(api) -> dict:
    response = send(api, "POST", "/fhir/Practitioner", body_for("Practitioner"))
    assert response.status_code == 201
    return response.json()


def attached_bundle(message) -> dict:
    [(name, content, mime)] = message.attachments
    assert (name, mime) == ("notification.json", "application/fhir+json")
    return json.loads(content)


def test_handshake_and_events_by_email_with_references_only(api):
    created = subscribe(api, mime="text/plain;attach=application/fhir+json")
    deliver()
    changed = practitioner(api)
    deliver()

    handshake, notification = mail.outbox
    assert handshake.to == [ADDRESS] and handshake.from_email == "directory@server.example"
    assert Received("", {}, attached_bundle(handshake)).kind == "handshake"
    assert send(api, "GET", f"/fhir/Subscription/{created['id']}").json()["status"] == "active"
    bundle = attached_bundle(notification)
    assert problems(bundle, ALWAYS_SENT, (*EVENT_PARTS, "focus")) == []
    [entry] = bundle["entry"][1:]
    assert entry["fullUrl"].endswith(f"Practitioner/{changed['id']}") and "resource" not in entry
    # The body is for people: which resource changed, not what it says.
    assert f"Practitioner/{changed['id']}/_history/1" in notification.body
    assert changed["name"][0]["family"] not in notification.body + json.dumps(bundle)
    assert not Event.objects.filter(delivered__isnull=True).exists()


def test_plain_text_alone_has_no_attachment(api):
    subscribe(api)
    deliver()
    practitioner(api)
    deliver()

    assert [m.attachments for m in mail.outbox] == [[], []]
    assert "Event 1 at " in mail.outbox[1].body


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        ({"payload": "full-resource"}, "Subscription.channel.payload"),
        ({"mime": "application/fhir+json"}, "Subscription.channel.payload"),
        ({"endpoint": "mailto:a@b.example,c@d.example"}, "Subscription.channel.endpoint"),
        ({"endpoint": "mailto:a@b.example?bcc=c@d.example"}, "Subscription.channel.endpoint"),
        ({"endpoint": "mailto:not-an-address"}, "Subscription.channel.endpoint"),
        ({"endpoint": "https://hook.example/x"}, "Subscription.channel.endpoint"),
        ({"header": ["X-Token: secret"]}, "Subscription.channel.header"),
    ],
)
def test_what_email_cannot_carry_is_refused(api, change, expression):
    response = send(api, "POST", "/fhir/Subscription", email_body(**change))

    assert response.status_code == 422
    assert outcome_issue(response)["expression"] == [expression]
    assert not Channel.objects.exists()


def test_refused_unless_enabled(api, settings):
    settings.SUBSCRIPTION_EMAIL_ENABLED = False
    response = send(api, "POST", "/fhir/Subscription", email_body())
    assert response.status_code == 422
    assert outcome_issue(response)["expression"] == ["Subscription.channel.type"]


def test_a_refusing_mail_server_is_retried(api, monkeypatch):
    subscribe(api)
    deliver()
    practitioner(api)
    sent = []

    def refuse_once(self, messages):
        if not sent:
            sent.append("refused")
            raise smtplib.SMTPRecipientsRefused({ADDRESS: (550, b"mailbox busy")})
        mail.outbox.extend(messages)
        return len(messages)

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse_once)
    deliver()
    channel = Channel.objects.get()
    assert channel.failures == 1 and "SMTPRecipientsRefused" in channel.last_error
    assert ADDRESS not in channel.last_error  # addresses are not logged or shown

    deliver()

    assert len(mail.outbox) == 2 and Channel.objects.get().failures == 0
    assert not Event.objects.filter(delivered__isnull=True).exists()


def test_disabled_after_subscribing_sends_nothing(api, settings):
    subscribe(api)
    settings.SUBSCRIPTION_EMAIL_ENABLED = False

    deliver()

    assert mail.outbox == []
    assert "not enabled" in Channel.objects.get().last_error
