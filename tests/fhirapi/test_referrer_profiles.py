"""Over HTTP: an update may not make a resource stop conforming to a profile that a stored
referrer requires of it (directory/profiles/referrers.py): 409 naming the referrer, nothing
written; in a transaction the Bundle's final state is judged."""

from __future__ import annotations

import json

import pytest

from directory import bulkload
from directory.models import Resource
from directory.profiles import targets
from tests.factories import make_npi

from .test_reference_profiles import PRACTITIONER_PROFILE, _practitioner, _role, _store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_verdicts():
    targets.VERDICTS.clear()
    yield
    targets.VERDICTS.clear()


@pytest.fixture
def practitioner_and_role(fhir) -> tuple[str, str]:
    practitioner_id = _store(fhir, _practitioner(conforming=True))
    role_id = _store(fhir, _role(f"Practitioner/{practitioner_id}"))
    return practitioner_id, role_id


def _put(fhir, resource_type: str, resource_id: str, content: dict):
    body = {**content, "id": resource_id}
    return fhir("PUT", f"{resource_type}/{resource_id}", data=json.dumps(body))


def _another_practitioner() -> dict:
    """A second conforming practitioner: the example's, with an NPI of its own."""
    practitioner = _practitioner(conforming=True)
    for identifier in practitioner.get("identifier", []):
        if identifier.get("system") == "http://hl7.org/fhir/sid/us-npi":
            identifier["value"] = make_npi(90)
    return practitioner


def _version(resource_type: str, resource_id: str) -> int:
    return Resource.objects.get(resource_type=resource_type, logical_id=resource_id).version_id


def test_an_update_breaking_a_referrers_profile_is_refused_naming_it(fhir, practitioner_and_role):
    practitioner_id, role_id = practitioner_and_role
    response = _put(fhir, "Practitioner", practitioner_id, _practitioner(conforming=False))
    assert response.status_code == 409, response.text
    assert response.headers["Cache-Control"] == "no-store"
    issue = response.json()["issue"][0]
    assert issue["code"] == "conflict"
    assert f"PractitionerRole/{role_id}" in issue["diagnostics"]
    assert PRACTITIONER_PROFILE in issue["diagnostics"]
    assert issue["expression"] == ["PractitionerRole.practitioner"]
    # Nothing written: the practitioner keeps its first version.
    assert _version("Practitioner", practitioner_id) == 1
    read = fhir("GET", f"Practitioner/{practitioner_id}").json()
    assert read["active"] is True


def test_an_update_that_keeps_conforming_is_stored(fhir, practitioner_and_role):
    practitioner_id, _ = practitioner_and_role
    renamed = _practitioner(conforming=True)
    renamed["name"] = [{"family": "Renamed", "given": ["Pat"]}]
    assert _put(fhir, "Practitioner", practitioner_id, renamed).status_code == 200
    assert _version("Practitioner", practitioner_id) == 2


def test_a_referrer_claiming_no_profile_requires_nothing(fhir):
    practitioner_id = _store(fhir, _practitioner(conforming=True))
    role = _role(f"Practitioner/{practitioner_id}")
    del role["meta"]["profile"]
    _store(fhir, role)
    response = _put(fhir, "Practitioner", practitioner_id, _practitioner(conforming=False))
    assert response.status_code == 200, response.text


def test_once_the_referrer_lets_go_the_update_is_stored(fhir, practitioner_and_role):
    practitioner_id, role_id = practitioner_and_role
    other_id = _store(fhir, _another_practitioner())
    assert _put(fhir, "PractitionerRole", role_id, _role(f"Practitioner/{other_id}")).ok
    response = _put(fhir, "Practitioner", practitioner_id, _practitioner(conforming=False))
    assert response.status_code == 200, response.text


def _transaction(*entries: tuple[str, str, dict]) -> str:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**content, "id": rid},
                "request": {"method": "PUT", "url": f"{rtype}/{rid}"},
            }
            for rtype, rid, content in entries
        ],
    }
    return json.dumps(bundle)


def test_a_transaction_is_judged_on_the_state_it_leaves(fhir, practitioner_and_role):
    practitioner_id, role_id = practitioner_and_role
    other_id = _store(fhir, _another_practitioner())
    broken = ("Practitioner", practitioner_id, _practitioner(conforming=False))
    alone = fhir("POST", "", data=_transaction(broken))
    assert alone.status_code == 409, alone.text
    assert _version("Practitioner", practitioner_id) == 1
    # The same change with the role moved elsewhere in the same Bundle leaves nothing broken.
    moved = ("PractitionerRole", role_id, _role(f"Practitioner/{other_id}"))
    together = fhir("POST", "", data=_transaction(broken, moved))
    assert together.status_code == 200, together.text
    assert _version("Practitioner", practitioner_id) == 2


def test_a_referrer_already_broken_does_not_block_other_updates(fhir):
    # A load without reference checks (generatedirectory --no-reference-check) does not judge
    # targets, so a role may already point at a non-conforming one.
    practitioner_id = _store(fhir, _practitioner(conforming=False))
    role = {**_role(f"Practitioner/{practitioner_id}"), "id": "bulk-role"}
    bulkload.bulk_load([("PractitionerRole", role)], check_references=False)
    still_not = _practitioner(conforming=False)
    still_not["name"] = [{"family": "Other", "given": ["Pat"]}]
    assert _put(fhir, "Practitioner", practitioner_id, still_not).status_code == 200
