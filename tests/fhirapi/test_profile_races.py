"""Over HTTP, two clients at once: a write judging its target against the element's targetProfile
(directory/profiles/targets.py) and an update making that target stop conforming, whose check of
stored referrers (profiles/referrers.py) cannot see the first write's uncommitted reference.

Each order is forced, not hoped for: one request is held inside its transaction, right after its
own check, until the other has finished or waits for a lock. Without a lock between the two
checks both commit, and a role is stored naming a Practitioner that does not conform to the
profile the role requires of it, which neither request may do alone. The same for a `bulk_load`
batch and an `$import` job, whose line must then be refused or reported, never stored unsaid.

Two transaction Bundles each updating the Practitioner the other's new role names hold their own
and wait for the other's: PostgreSQL aborts one, which is refused whole, the other applied.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
import requests
from django.db import connection

from directory import bulkload, storage
from directory.models import Resource
from directory.profiles import referrers, targets
from security.models import RequestAudit
from tests import plannet_lines
from tests.races import WAIT, Request, held_after, meeting_before, race

from . import test_bulk_import as bulk
from .test_reference_profiles import _practitioner, _role, _store

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite serializes writers: no race to lose"
    ),
]


# A fixture's function sending a request (`fhir`, `importer`).
Client = Callable[..., requests.Response]


@pytest.fixture(autouse=True)
def fresh_verdicts():
    targets.VERDICTS.clear()
    yield
    targets.VERDICTS.clear()


def _put_practitioner(fhir, practitioner_id: str) -> requests.Response:
    body = {**_practitioner(conforming=False), "id": practitioner_id}
    return fhir("PUT", f"Practitioner/{practitioner_id}", data=json.dumps(body))


def _post_role(fhir, practitioner_id: str) -> requests.Response:
    return fhir(
        "POST", "PractitionerRole", data=json.dumps(_role(f"Practitioner/{practitioner_id}"))
    )


def _practitioner_conforms(practitioner_id: str) -> bool:
    """Live and conforming to plannet-Practitioner (the non-conforming update drops `active`)."""
    row = Resource.objects.get(resource_type="Practitioner", logical_id=practitioner_id)
    return row.content is not None and json.loads(row.content)["active"] is True


def _roles() -> int:
    return Resource.objects.filter(resource_type="PractitionerRole", deleted=False).count()


def test_a_role_judged_before_its_target_is_updated_blocks_that_update(fhir):
    """The role's write has judged the Practitioner conforming and not yet committed when the
    update arrives: the update must wait for it and then be refused 409 for the new role."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def judging_a_role(resource: dict, **_: object) -> bool:
        return resource.get("resourceType") == "PractitionerRole"

    with held_after(targets, "check", judging_a_role) as reached:
        role = Request(lambda: _post_role(fhir, practitioner_id))
        update = Request(lambda: _put_practitioner(fhir, practitioner_id))
        race(role, reached, update)
    assert role.response is not None and update.response is not None

    assert role.response.status_code == 201, role.response.text
    assert update.response.status_code == 409, update.response.text
    assert "PractitionerRole/" in update.response.json()["issue"][0]["diagnostics"]
    assert _practitioner_conforms(practitioner_id)


def test_a_target_updated_before_the_role_is_judged_is_judged_as_updated(fhir):
    """The update has passed its referrer check (no role yet) and not yet committed when the
    role's write judges the Practitioner: that judgement must wait for the update and see the
    non-conforming version it commits, refusing the role 422."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def updating_the_practitioner(row: Resource) -> bool:
        return (row.resource_type, row.logical_id) == ("Practitioner", practitioner_id)

    with held_after(referrers, "check_referrers", updating_the_practitioner) as reached:
        update = Request(lambda: _put_practitioner(fhir, practitioner_id))
        role = Request(lambda: _post_role(fhir, practitioner_id))
        race(update, reached, role)
    assert update.response is not None and role.response is not None

    assert update.response.status_code == 200, update.response.text
    assert role.response.status_code == 422, role.response.text
    assert "plannet-Practitioner" in role.response.json()["issue"][0]["diagnostics"]
    assert _roles() == 0
    assert not _practitioner_conforms(practitioner_id)


def _load_role(practitioner_id: str) -> int:
    """`bulk_load` (loaddirectory, generatedirectory) of one role naming the practitioner."""
    return bulkload.bulk_load([("PractitionerRole", plannet_lines.role("r-race", practitioner_id))])


def test_a_bulk_batch_judging_its_target_blocks_that_targets_update(fhir):
    """A `bulk_load` batch has judged the Practitioner its role names and not yet committed when
    the update arrives: the update waits for the batch and is refused 409 for the role."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def judging_the_batch(*_: object) -> bool:
        return threading.current_thread() is batch

    with held_after(targets, "judge", judging_the_batch) as reached:
        batch = Request(lambda: _load_role(practitioner_id))
        update = Request(lambda: _put_practitioner(fhir, practitioner_id))
        race(batch, reached, update)
    assert batch.response == 1 and update.response is not None
    assert update.response.status_code == 409, update.response.text
    assert "PractitionerRole/r-race" in update.response.json()["issue"][0]["diagnostics"]
    assert _roles() == 1
    assert _practitioner_conforms(practitioner_id)


# ---------------------------------------------------------------- $import

# The $import tests' client; on PostgreSQL its job thread runs beside the test's requests.
importer = bulk.importer


def _import_role(importer: Client, practitioner_id: str) -> tuple[dict, list[dict]]:
    """`$import` of one line, a role naming the practitioner: the manifest and the error file."""
    return bulk.imported(importer, bulk.ndjson(plannet_lines.role("r-race", practitioner_id)))


def _change(fhir: Client, practitioner_id: str, how: str) -> requests.Response:
    if how == "delete":
        return fhir("DELETE", f"Practitioner/{practitioner_id}")
    return _put_practitioner(fhir, practitioner_id)


def _role_stored() -> bool:
    return Resource.objects.filter(
        resource_type="PractitionerRole", logical_id="r-race", deleted=False
    ).exists()


def _assert_consistent(practitioner_id: str, outcomes: list[dict]) -> None:
    """Whatever the order: the line is refused, or stored naming a conforming target, or stored
    and reported; never stored beside a target that no longer conforms with nothing said."""
    reported = [i for o in outcomes for i in o["issue"] if i["diagnostics"].startswith("Line 1")]
    if _role_stored():
        assert _practitioner_conforms(practitioner_id) or reported, "stored, unreported"
    else:
        assert [i["severity"] for i in reported] == ["error"]


def _import_raced(
    fhir: Client, importer: Client, practitioner_id: str, how: str, *, import_first: bool, hold
) -> tuple[requests.Response, dict, list[dict]]:
    """The import of the role and a change of its Practitioner (`how`), the first held by `hold`
    (`held_after`'s module, function and predicate) until the second is answered or blocked.
    Checks the outcome is consistent; returns the change's response, the manifest and errors."""
    with held_after(*hold) as reached:
        job = Request(lambda: _import_role(importer, practitioner_id))
        change = Request(lambda: _change(fhir, practitioner_id, how))
        race(*((job, reached, change) if import_first else (change, reached, job)))
    assert job.response is not None and change.response is not None
    manifest, outcomes = job.response
    _assert_consistent(practitioner_id, outcomes)
    return change.response, manifest, outcomes


# A delete waits for the batch's FOR KEY SHARE on the targets it names as well (bulkimport.py).
@pytest.mark.parametrize("how", ["update", "delete"])
def test_an_import_batch_judging_its_target_blocks_that_targets_change(
    fhir: Client, importer: Client, how: str
) -> None:
    """The import's batch has judged the Practitioner its role names and not yet committed when
    an update making it non-conforming (or a delete) arrives over HTTP: that waits for the
    batch and is refused 409 for the imported role, which is stored with nothing to report."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def judging_the_line(judged: list[tuple[dict, list]], *_: object) -> bool:
        return any(resource.get("id") == "r-race" for resource, _ in judged)

    hold = (targets, "judge", judging_the_line)
    change, _, outcomes = _import_raced(
        fhir, importer, practitioner_id, how, import_first=True, hold=hold
    )
    assert change.status_code == 409, change.text
    assert "PractitionerRole/r-race" in change.json()["issue"][0]["diagnostics"]
    assert outcomes == []
    assert _role_stored() and _practitioner_conforms(practitioner_id)


def test_a_target_updated_before_the_import_judges_it_refuses_the_line(
    fhir: Client, importer: Client
) -> None:
    """The update has passed its referrer check (no role yet) and not yet committed when the
    import's batch judges the Practitioner: the batch waits for it, judges the version it
    commits, and refuses the line naming the element's profile."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def updating_the_practitioner(row: Resource) -> bool:
        return (row.resource_type, row.logical_id) == ("Practitioner", practitioner_id)

    hold = (referrers, "check_referrers", updating_the_practitioner)
    change, manifest, outcomes = _import_raced(
        fhir, importer, practitioner_id, "update", import_first=False, hold=hold
    )
    assert change.status_code == 200, change.text
    assert manifest["output"] == []
    [issue] = [i for o in outcomes for i in o["issue"]]
    assert issue["severity"] == "error"
    assert issue["diagnostics"].startswith("Line 1 (PractitionerRole/r-race): ")
    assert plannet_lines.PRACTITIONER_PROFILE in issue["diagnostics"]
    assert not _role_stored()


def test_a_target_deleted_before_the_import_looks_is_reported_dangling(
    fhir: Client, importer: Client
) -> None:
    """The delete has found no referrer and not yet committed when the import's batch looks its
    target up: the batch waits for it, and the role is stored with the missing target reported."""
    practitioner_id = _store(fhir, _practitioner(conforming=True))

    def deleting_the_practitioner(resource_type: str, logical_id: str) -> bool:
        return (resource_type, logical_id) == ("Practitioner", practitioner_id)

    hold = (storage, "_refuse_if_referenced", deleting_the_practitioner)
    change, _, outcomes = _import_raced(
        fhir, importer, practitioner_id, "delete", import_first=False, hold=hold
    )
    assert change.status_code == 204, change.text
    [issue] = [i for o in outcomes for i in o["issue"]]
    assert issue["severity"] == "warning"
    assert issue["diagnostics"] == (
        f"Line 1: stored, but the referenced resource Practitioner/{practitioner_id} does not exist"
    )
    assert _role_stored()


# ---------------------------------------------------------------- two transactions


def _conforming(n: int, **extra: object) -> dict:
    return {**plannet_lines.practitioner(f"p-{n}", n, conforming=True), **extra}


def _swap_bundle(own: int, other: int) -> dict:
    """Update one Practitioner (still conforming) and create a role naming the other one."""
    own_id, other_id = f"p-{own}", f"p-{other}"
    content = _conforming(own, name=[{"family": f"Renamed {own}"}])
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": content, "request": {"method": "PUT", "url": f"Practitioner/{own_id}"}},
            {
                "resource": _role(f"Practitioner/{other_id}"),
                "request": {"method": "POST", "url": "PractitionerRole"},
            },
        ],
    }


def _version(practitioner_id: str) -> int:
    row = Resource.objects.get(resource_type="Practitioner", logical_id=practitioner_id)
    return row.version_id


def test_two_transactions_judging_each_others_target_deadlock_and_one_is_applied_whole(
    fhir: Client,
) -> None:
    """Each Bundle updates one Practitioner (locked FOR NO KEY UPDATE) and creates a role whose
    practitioner is the other one's, judged FOR SHARE: once both hold their own, each judging
    waits for the other and PostgreSQL aborts one. The other is applied; the victim is refused
    whole as a conflict to send again (never a 500, never part of it stored)."""
    for n in (1, 2):
        stored = fhir("PUT", f"Practitioner/p-{n}", data=json.dumps(_conforming(n)))
        assert stored.status_code == 201, stored.text

    with meeting_before(storage, "_check_pending_targets", 2):
        one = Request(lambda: fhir("POST", data=json.dumps(_swap_bundle(1, 2))))
        other = Request(lambda: fhir("POST", data=json.dumps(_swap_bundle(2, 1))))
        for request in (one, other):
            request.start()
        for request in (one, other):
            request.join(WAIT)
    assert not one.is_alive() and not other.is_alive()

    applied, refused = sorted([one.response, other.response], key=lambda r: r.status_code)
    assert applied.status_code == 200, applied.text
    assert [e["response"]["status"] for e in applied.json()["entry"]] == ["200 OK", "201 Created"]
    # The deadlock's victim: what fhirapi/transactions.py answers for 40P01, nothing stored.
    assert refused.status_code == 409, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "conflict"
    assert "collided with a concurrent one" in outcome["issue"][0]["diagnostics"]
    # A conflict, not an outage: no Retry-After, and the audit says so.
    assert "Retry-After" not in refused.headers
    audited = RequestAudit.objects.filter(method="POST", status=409).values_list("outcome")
    assert "database-unavailable" not in {outcome for (outcome,) in audited}
    # Only the applied Bundle's writes: its Practitioner at version 2, its role naming the other.
    versions = {f"Practitioner/p-{n}": _version(f"p-{n}") for n in (1, 2)}
    assert sorted(versions.values()) == [1, 2]
    roles = Resource.objects.filter(resource_type="PractitionerRole", deleted=False)
    [named] = [json.loads(row.content or "{}")["practitioner"]["reference"] for row in roles]
    assert versions[named] == 1
