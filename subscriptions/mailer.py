"""The email channel: a notification as a plain-text message, sent by Django's email backend.

Only for `empty` and `id-only` content (resource.py refuses `full-resource`): email crosses mail
servers this one does not control, often without encryption, is copied, forwarded and kept in
mailboxes for years, and cannot be recalled, so it carries which resources changed and never
what they say. The subscriber reads them through the API, where its credentials and scopes are
checked. The body is written from the notification's SubscriptionStatus (Backport IG, email:
body human readable, attachment machine readable), so it never holds more than the Bundle;
with `text/plain;attach=application/fhir+json` the Bundle itself is attached.
"""

from __future__ import annotations

import json
import smtplib

from django.conf import settings
from django.core.mail import EmailMessage

from .channels import DeliveryFailed
from .models import Channel

ATTACHMENT = "notification.json"
FHIR_JSON = "application/fhir+json"


def send(channel: Channel, address: str, bundle: dict) -> None:
    """Hand the message to the email backend; DeliveryFailed when it is not accepted."""
    bundle = references_only(bundle)
    message = EmailMessage(
        subject=f"Subscription/{channel.logical_id}: {_status(bundle).get('type', '')}",
        body=body(bundle),
        from_email=settings.SUBSCRIPTIONS_EMAIL_FROM or None,
        to=[address],
    )
    if channel.email_attach:
        message.attach(ATTACHMENT, json.dumps(bundle, indent=1), FHIR_JSON)
    try:
        sent = message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"the mail server refused: {type(exc).__name__}") from None
    if sent != 1:
        raise DeliveryFailed("the mail server did not accept the message")


def references_only(bundle: dict) -> dict:
    """The Bundle without any resource but its SubscriptionStatus (a second guard)."""
    entries = bundle.get("entry") or []
    rest = [{k: v for k, v in entry.items() if k != "resource"} for entry in entries[1:]]
    return {**bundle, "entry": entries[:1] + rest}


def body(bundle: dict) -> str:
    """Plain text: what happened to which subscription, and the event numbers and references."""
    status = _status(bundle)
    lines = [
        f"Subscription: {status.get('subscription', '')}",
        f"Topic: {status.get('topic', '')}",
        f"Notification: {status.get('type', '')} (status {status.get('status', '')})",
        f"Events since the subscription started: {status.get('events-since-subscription-start')}",
    ]
    for event in status.get("notification-event", []):
        focus = f" {event['focus']}" if "focus" in event else ""
        number, moment = event.get("event-number", ""), event.get("timestamp", "")
        lines.append(f"Event {number} at {moment}:{focus}")
    lines += [
        "",
        "This message names the changed resources only. Read them through the directory's FHIR",
        "API with your client's credentials.",
    ]
    return "\n".join(lines) + "\n"


def _status(bundle: dict) -> dict:
    """The first entry's Parameters as name -> value (notification-event: a list of parts)."""
    found: dict = {"notification-event": []}
    entries = bundle.get("entry") or [{}]
    for parameter in (entries[0].get("resource") or {}).get("parameter") or []:
        if parameter.get("name") == "notification-event":
            found["notification-event"].append(
                {part["name"]: _value(part) for part in parameter.get("part") or []}
            )
        else:
            found[parameter.get("name")] = _value(parameter)
    return found


def _value(parameter: dict) -> str:
    for key, value in parameter.items():
        if key.startswith("value"):
            return value.get("reference", "") if isinstance(value, dict) else str(value)
    return ""
