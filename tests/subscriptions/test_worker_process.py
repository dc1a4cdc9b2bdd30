"""The worker as deployed: its own process, reading the outbox the API committed.

PostgreSQL only: the worker process must share the test database (tests/servers.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import requests

from subscriptions.models import Event
from tests.fhirapi.conftest import body_for
from tests.servers import ROOT, process_env

from .conftest import SUBSCRIBER_SECRET, subscription_body

pytestmark = pytest.mark.django_db(transaction=True)
JSON = "application/fhir+json"


def run_worker() -> str:
    env = process_env(
        SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK="true", SUBSCRIPTIONS_RETRY_BASE_SECONDS="0"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "deliversubscriptions", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout + done.stderr


def test_event_survives_until_a_worker_runs(live_server, credentials, subscriber):
    base = f"{live_server.url}/fhir"
    headers = {**credentials.http, "Accept": JSON, "Content-Type": JSON}
    created = requests.post(
        f"{base}/Subscription", json=subscription_body(subscriber.url), headers=headers, timeout=10
    )
    assert created.status_code == 201
    run_worker()
    assert [r.kind for r in subscriber.received] == ["handshake"]

    practitioner = requests.post(
        f"{base}/Practitioner", json=body_for("Practitioner"), headers=headers, timeout=10
    ).json()
    # The API process is done and no worker ran: the event is only in the committed outbox.
    assert Event.objects.filter(logical_id=practitioner["id"]).count() == 1

    output = run_worker()

    [notification] = subscriber.of_kind("event-notification")
    assert notification.body["entry"][1]["fullUrl"].endswith(f"Practitioner/{practitioner['id']}")
    assert notification.headers["Authorization"] == SUBSCRIBER_SECRET
    assert not Event.objects.filter(delivered__isnull=True).exists()
    assert "events=1" in output
    assert "subscriber-secret" not in output


def test_the_long_running_worker_delivers_and_stops_on_sigterm(
    live_server, credentials, subscriber
):
    env = process_env(SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK="true")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "deliversubscriptions", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        headers = {**credentials.http, "Accept": JSON, "Content-Type": JSON}
        base = f"{live_server.url}/fhir"
        requests.post(
            f"{base}/Subscription",
            json=subscription_body(subscriber.url),
            headers=headers,
            timeout=10,
        )
        requests.post(
            f"{base}/Practitioner", json=body_for("Practitioner"), headers=headers, timeout=10
        )
        deadline = time.monotonic() + 60
        while not subscriber.of_kind("event-notification") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [r.kind for r in subscriber.received] == ["handshake", "event-notification"]
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0
    assert "subscriber-secret" not in output
