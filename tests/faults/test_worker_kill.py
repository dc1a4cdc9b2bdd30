"""A gunicorn worker killed with SIGKILL in the middle of a write leaves nothing half-written.

The test holds a table lock the write needs last (the token index), so the worker is caught
inside its transaction with the resource and its first version already written, and kills it
there. The transaction must roll back as a whole, the master must start a replacement, and the
client's retry must succeed.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests
from django.db import connection, transaction

from directory.models import Resource, ResourceVersion, StringIndex, TokenIndex

from .conftest import WORKERS
from .fhir import IDENTIFIER_SYSTEM, id_of, marker, organization
from .processes import alive, children_of, owner_of_local_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 15


def poll(what: str, found):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def blocked_backend_port() -> int | None:
    """The client port of the server backend waiting for our lock, if one is."""
    with connection.cursor() as cursor:
        # Inside our transaction the activity view would otherwise stay as first read.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid() AND datname = current_database()"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def backend_gone(port: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE client_port = %s", [port])
        return cursor.fetchone()[0] == 0


def full_set(master: int, victim: int) -> list[int] | None:
    """The master's workers once there are WORKERS again without the killed one."""
    now = children_of(master)
    return now if len(now) == WORKERS and victim not in now else None


def traces_of(name: str, value: str) -> list[int]:
    """Rows any part of a write carrying `name` and identifier `value` would have left."""
    return [
        Resource.objects.filter(content__contains=name).count(),
        ResourceVersion.objects.filter(content__contains=name).count(),
        StringIndex.objects.filter(value__icontains=name).count(),
        TokenIndex.objects.filter(code=value).count(),
    ]


def test_worker_killed_mid_write_leaves_nothing_and_is_replaced(served):
    fhir, master = served
    workers = children_of(master.pid)
    assert len(workers) == WORKERS
    name, value = marker(), marker()
    answers: list = []

    def write():
        try:
            answers.append(fhir.create(organization(name, value)))
        except requests.RequestException as error:
            answers.append(error)

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {TokenIndex._meta.db_table} IN EXCLUSIVE MODE")
        writer = threading.Thread(target=write)
        writer.start()
        port = poll("the write to wait for the lock", blocked_backend_port)
        victim = owner_of_local_port(port, workers)
        assert victim is not None, "no worker holds the blocked connection"
        os.kill(victim, signal.SIGKILL)
        writer.join(timeout=WAIT_SECONDS)
    # The lock is released: the orphaned backend runs on, finds its client gone and rolls back.
    poll("the killed worker's database session to end", lambda: backend_gone(port))

    assert len(answers) == 1 and isinstance(answers[0], requests.ConnectionError), answers
    assert traces_of(name, value) == [0, 0, 0, 0], "a half-written resource was left"
    replaced = poll("the master to replace the worker", lambda: full_set(master.pid, victim))
    assert not alive(victim) and set(replaced) - set(workers)

    retried = fhir.create(organization(name, value), f"identifier={IDENTIFIER_SYSTEM}|{value}")
    assert retried.status_code == 201, retried.text
    assert fhir.read(id_of(retried)).status_code == 200
    assert traces_of(name, value)[:2] == [1, 1]
