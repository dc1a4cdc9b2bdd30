"""A subscriber on loopback (a threading http.server) and helpers to subscribe and deliver."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command

from subscriptions import topics
from subscriptions.resource import (
    FILTER_CRITERIA,
    HEARTBEAT_PERIOD,
    PAYLOAD_CONTENT,
)
from tests.subscriptions.backport_oracle import problems

FHIR_JSON = "application/fhir+json"
# Optional in the Backport IG's status profile, always sent by this server.
ALWAYS_SENT = ("topic", "events-since-subscription-start")
EVENT_PARTS = ("event-number", "timestamp")
SUBSCRIBER_SECRET = "Bearer subscriber-secret-7f3a9c21e0b44d5e"


@dataclass
class Received:
    path: str
    headers: dict
    body: dict

    @property
    def status(self) -> dict:
        """The SubscriptionStatus parameters, by name (notification-event as a list)."""
        found: dict = {"notification-event": []}
        for parameter in self.body["entry"][0]["resource"]["parameter"]:
            name = parameter["name"]
            if name == "notification-event":
                parts = {p["name"]: p for p in parameter["part"]}
                found[name].append(parts)
            else:
                found[name] = next(v for k, v in parameter.items() if k.startswith("value"))
        return found

    @property
    def kind(self) -> str:
        return self.status["type"]


@dataclass
class Subscriber:
    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer, then 200

    def of_kind(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.kind == kind]


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    state = Subscriber(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            state.received.append(Received(self.path, dict(self.headers), body))
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook?token=abc"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    # Every Bundle any test had delivered is checked against the IG's profile (its FSH).
    for received in state.received:
        assert problems(received.body, ALWAYS_SENT, EVENT_PARTS) == [], received.kind


@pytest.fixture(autouse=True)
def _subscription_settings(settings):
    settings.SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK = True
    settings.SUBSCRIPTIONS_RETRY_BASE_SECONDS = 0.0  # retried at the next pass
    settings.SUBSCRIPTIONS_FHIR_BASE = "https://directory.test/fhir"


def topic_url(resource_type: str) -> str:
    return next(url for url, t in topics.topics().items() if t.resource_type == resource_type)


def subscription_body(
    endpoint: str,
    resource_type: str = "Practitioner",
    *,
    payload: str = "id-only",
    filters: tuple[str, ...] = (),
    headers: tuple[str, ...] = (f"Authorization: {SUBSCRIBER_SECRET}",),
    heartbeat: int | None = None,
    **overrides,
) -> dict:
    channel = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "payload": FHIR_JSON,
        "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": payload}]},
    }
    if headers:
        channel["header"] = list(headers)
    if heartbeat is not None:
        channel["extension"] = [{"url": HEARTBEAT_PERIOD, "valueUnsignedInt": heartbeat}]
    body = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Directory changes",
        "criteria": topic_url(resource_type),
        "channel": channel,
    }
    if filters:
        body["_criteria"] = {
            "extension": [{"url": FILTER_CRITERIA, "valueString": f} for f in filters]
        }
    body.update(overrides)
    return body


def deliver() -> None:
    call_command("deliversubscriptions", "--once", stdout=io.StringIO())
