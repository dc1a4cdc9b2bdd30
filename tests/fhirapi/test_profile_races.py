"""Over HTTP, two clients at once: a write judging its target against the element's targetProfile
(directory/profiles/targets.py) and an update making that target stop conforming, whose check of
stored referrers (profiles/referrers.py) cannot see the first write's uncommitted reference.

Each order is forced, not hoped for: one request is held inside its transaction, right after its
own check, until the other has finished or waits for a lock. Without a lock between the two
checks both commit, and a role is stored naming a Practitioner that does not conform to the
profile the role requires of it, which neither request may do alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from django.db import connection, connections

from directory import bulkload
from directory.models import Resource
from directory.profiles import referrers, targets
from tests import plannet_lines

from .test_reference_profiles import _practitioner, _role, _store

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite serializes writers: no race to lose"
    ),
]

WAIT = 20  # seconds a step may take before the test gives up


@pytest.fixture(autouse=True)
def fresh_verdicts():
    targets.VERDICTS.clear()
    yield
    targets.VERDICTS.clear()


class _Request(threading.Thread):
    """One request sent from a thread of its own; `response` once it is answered."""

    def __init__(self, send: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.send = send
        self.response: Any = None

    def run(self) -> None:
        try:
            self.response = self.send()
        finally:
            connections.close_all()  # this thread's own, when it used the database directly


def _finished_or_waiting(request: _Request) -> None:
    """Return once `request` is answered or a backend of this database waits for a row lock."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if not request.is_alive():
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("the second request neither finished nor waited for a lock")


@contextmanager
def _held_after(module, name: str, holds: Callable[..., bool]) -> Iterator[threading.Event]:
    """Patch `module.name` so that a call `holds` accepts, once it has run, signals the event it
    yields and then waits for the test to set `release` (an attribute of that event)."""
    original = getattr(module, name)
    reached = threading.Event()
    release = threading.Event()
    reached.release = release  # type: ignore[attr-defined]

    def patched(*args, **kwargs):
        result = original(*args, **kwargs)
        if holds(*args, **kwargs):
            reached.set()
            assert release.wait(WAIT), "the held request was never released"
        return result

    setattr(module, name, patched)
    try:
        yield reached
    finally:
        release.set()
        setattr(module, name, original)


def _race(first: _Request, reached: threading.Event, second: _Request) -> None:
    """`first` runs to its hold; `second` runs until answered or blocked; then `first` goes on."""
    first.start()
    assert reached.wait(WAIT), "the first request never reached its hold"
    second.start()
    _finished_or_waiting(second)
    reached.release.set()  # type: ignore[attr-defined]
    first.join(WAIT)
    second.join(WAIT)
    assert not first.is_alive() and not second.is_alive()


def _put_practitioner(fhir, practitioner_id: str) -> requests.Response:
    body = {**_practitioner(conforming=False), "id": practitioner_id}
    return fhir("PUT", f"Practitioner/{practitioner_id}", data=json.dumps(body))


def _post_role(fhir, practitioner_id: str) -> requests.Response:
    return fhir(
        "POST", "PractitionerRole", data=json.dumps(_role(f"Practitioner/{practitioner_id}"))
    )


def _stored_practitioner_conforms(practitioner_id: str) -> bool:
    row = Resource.objects.get(resource_type="Practitioner", logical_id=practitioner_id)
    return json.loads(row.content)["active"] is True


def _roles() -> int:
    return Resource.objects.filter(resource_type="PractitionerRole", deleted=False).count()


def test_a_role_judged_before_its_target_is_updated_blocks_that_update(fhir):
    """The role's write has judged the Practitioner conforming and not yet committed when the
    update arrives: the update must wait for it and then be refused 409 for the new role."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def judging_a_role(resource: dict, **_: object) -> bool:
        return resource.get("resourceType") == "PractitionerRole"

    with _held_after(targets, "check", judging_a_role) as reached:
        role = _Request(lambda: _post_role(fhir, practitioner_id))
        update = _Request(lambda: _put_practitioner(fhir, practitioner_id))
        _race(role, reached, update)
    assert role.response is not None and update.response is not None

    assert role.response.status_code == 201, role.response.text
    assert update.response.status_code == 409, update.response.text
    assert "PractitionerRole/" in update.response.json()["issue"][0]["diagnostics"]
    assert _stored_practitioner_conforms(practitioner_id)


def test_a_target_updated_before_the_role_is_judged_is_judged_as_updated(fhir):
    """The update has passed its referrer check (no role yet) and not yet committed when the
    role's write judges the Practitioner: that judgement must wait for the update and see the
    non-conforming version it commits, refusing the role 422."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def updating_the_practitioner(row: Resource) -> bool:
        return (row.resource_type, row.logical_id) == ("Practitioner", practitioner_id)

    with _held_after(referrers, "check_referrers", updating_the_practitioner) as reached:
        update = _Request(lambda: _put_practitioner(fhir, practitioner_id))
        role = _Request(lambda: _post_role(fhir, practitioner_id))
        _race(update, reached, role)
    assert update.response is not None and role.response is not None

    assert update.response.status_code == 200, update.response.text
    assert role.response.status_code == 422, role.response.text
    assert "plannet-Practitioner" in role.response.json()["issue"][0]["diagnostics"]
    assert _roles() == 0
    assert not _stored_practitioner_conforms(practitioner_id)


def _load_role(practitioner_id: str) -> int:
    """`bulk_load` (loaddirectory, generatedirectory) of one role naming the practitioner."""
    return bulkload.bulk_load([("PractitionerRole", plannet_lines.role("r-race", practitioner_id))])


def test_a_bulk_batch_judging_its_target_blocks_that_targets_update(fhir):
    """A `bulk_load` batch has judged the Practitioner its role names and not yet committed when
    the update arrives: the update waits for the batch and is refused 409 for the role."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def judging_the_batch(*_: object) -> bool:
        return threading.current_thread() is batch

    with _held_after(targets, "judge", judging_the_batch) as reached:
        batch = _Request(lambda: _load_role(practitioner_id))
        update = _Request(lambda: _put_practitioner(fhir, practitioner_id))
        _race(batch, reached, update)
    assert batch.response == 1 and update.response is not None
    assert update.response.status_code == 409, update.response.text
    assert "PractitionerRole/r-race" in update.response.json()["issue"][0]["diagnostics"]
    assert _roles() == 1
    assert _stored_practitioner_conforms(practitioner_id)
