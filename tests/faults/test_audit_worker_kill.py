"""Workers killed with SIGKILL right after answering lose no audit row.

The audit row commits before the response leaves (without waiting for its WAL flush, which only
a PostgreSQL crash could make matter): whatever a client was answered is in the audit, however
soon after the answer its worker dies. Client threads keep asking, each request on its own path;
as soon as an answer arrives the test kills every worker (others are then mid-request), waits
for the master to replace them, and does it again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from security.models import RequestAudit

from .conftest import WORKERS
from .processes import children_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

KILLS = 5
WAIT_SECONDS = 60


def wait_for(what: str, found) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not found():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_every_answered_request_is_audited_though_workers_are_killed(served):
    fhir, master = served
    answered: list[str] = []
    stop = threading.Event()

    def ask() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                path = f"/fhir/Organization/audit-{uuid.uuid4().hex}"
                url = fhir.base.removesuffix("/fhir") + path
                try:
                    response = session.get(url, headers=fhir.headers(), timeout=10)
                except requests.RequestException:
                    continue  # not answered: nothing is owed
                if response.status_code == 404:
                    answered.append(path)

    clients = [threading.Thread(target=ask) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        for _ in range(KILLS):
            seen = len(answered)
            wait_for("an answer", lambda seen=seen: len(answered) > seen)
            killed = children_of(master.pid)
            for pid in killed:
                with contextlib.suppress(ProcessLookupError):  # gone since it was listed
                    os.kill(pid, signal.SIGKILL)
            wait_for(
                "the master to replace its workers",
                lambda killed=killed: len(set(children_of(master.pid)) - set(killed)) == WORKERS,
            )
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)

    assert len(answered) >= KILLS
    audited = set(RequestAudit.objects.filter(path__in=answered).values_list("path", flat=True))
    assert [path for path in answered if path not in audited] == []
