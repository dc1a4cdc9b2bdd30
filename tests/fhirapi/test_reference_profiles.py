"""Over HTTP: a resource claiming a Plan-Net profile must point at targets conforming to the
element's targetProfile (plannet-PractitionerRole.practitioner -> plannet-Practitioner), stored,
contained or written in the same transaction; verdicts on stored targets are cached."""

from __future__ import annotations

import copy
import json
from unittest import mock

import pytest

from directory.models import Resource
from directory.profiles import targets
from tests import plannet

pytestmark = pytest.mark.django_db(transaction=True)

PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/"
PRACTITIONER_PROFILE = PLAN_NET + "plannet-Practitioner"
UUID = "urn:uuid:1c0ffee0-0000-4000-8000-0000000000"


@pytest.fixture(autouse=True)
def fresh_verdicts():
    targets.VERDICTS.clear()
    yield
    targets.VERDICTS.clear()


def _example(resource_type: str, example_id: str) -> dict:
    found = next(
        r for r in plannet.examples() if (r["resourceType"], r["id"]) == (resource_type, example_id)
    )
    found.pop("id")
    return found


def _practitioner(*, conforming: bool) -> dict:
    practitioner = _example("Practitioner", "Counselor")
    if not conforming:
        # Valid R4, claiming no profile: only plannet-Practitioner's `active` pattern fails.
        practitioner["active"] = False
        del practitioner["meta"]["profile"]
    return practitioner


def _role(practitioner_reference: str) -> dict:
    """plannet-PractitionerRole with nothing but its practitioner pointing anywhere."""
    role = _example("PractitionerRole", "AnonRole")
    for name in ("organization", "location", "healthcareService", "endpoint"):
        role.pop(name, None)
    role["extension"] = [e for e in role["extension"] if "network-reference" not in e["url"]]
    role["practitioner"] = {"reference": practitioner_reference}
    return role


def _store(fhir, content: dict) -> str:
    response = fhir("POST", content["resourceType"], data=json.dumps(content))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _counting():
    return mock.patch.object(targets, "validate_profile", wraps=targets.validate_profile)


def test_a_non_conforming_practitioner_is_refused_naming_element_and_profile(fhir):
    practitioner_id = _store(fhir, _practitioner(conforming=False))
    response = fhir(
        "POST", "PractitionerRole", data=json.dumps(_role(f"Practitioner/{practitioner_id}"))
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["expression"] == ["PractitionerRole.practitioner.reference"]
    assert PRACTITIONER_PROFILE in issue["diagnostics"]
    # The target's own failure (its `active`) is not the referrer's to learn.
    assert "active" not in json.dumps(body)
    assert not Resource.objects.filter(resource_type="PractitionerRole").exists()


def test_a_conforming_practitioner_is_created_and_judged_once(fhir):
    reference = f"Practitioner/{_store(fhir, _practitioner(conforming=True))}"
    with _counting() as calls:
        assert (
            fhir("POST", "PractitionerRole", data=json.dumps(_role(reference))).status_code == 201
        )
        judged = [c.args[1] for c in calls.call_args_list]
        assert judged == [PRACTITIONER_PROFILE]
        assert (
            fhir("POST", "PractitionerRole", data=json.dumps(_role(reference))).status_code == 201
        )
        assert calls.call_count == 1  # the second role reused the cached verdict


def test_a_new_version_of_the_target_is_judged_again(fhir):
    practitioner = _practitioner(conforming=True)
    practitioner_id = _store(fhir, practitioner)
    reference = f"Practitioner/{practitioner_id}"
    role_id = _store(fhir, _role(reference))
    # While the role points at it, the change is refused (test_referrer_profiles.py).
    assert fhir("DELETE", f"PractitionerRole/{role_id}").status_code in (200, 204)
    changed = {**_practitioner(conforming=False), "id": practitioner_id}
    assert fhir("PUT", reference, data=json.dumps(changed)).status_code == 200
    assert fhir("POST", "PractitionerRole", data=json.dumps(_role(reference))).status_code == 422


def test_a_contained_practitioner_must_conform_too(fhir):
    role = _role("#p")
    role["contained"] = [{**_practitioner(conforming=False), "id": "p"}]
    del role["contained"][0]["meta"]
    response = fhir("POST", "PractitionerRole", data=json.dumps(role))
    assert response.status_code == 422, response.text
    assert "contained Practitioner" in response.json()["issue"][0]["diagnostics"]
    role["contained"][0]["active"] = True
    assert fhir("POST", "PractitionerRole", data=json.dumps(role)).status_code == 201


def _bundle(practitioner: dict, roles: int) -> dict:
    entries = [
        {
            "fullUrl": f"{UUID}00",
            "resource": practitioner,
            "request": {"method": "POST", "url": "Practitioner"},
        }
    ]
    for _ in range(roles):
        entries.append(
            {
                "resource": _role(f"{UUID}00"),
                "request": {"method": "POST", "url": "PractitionerRole"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_a_transaction_judges_its_own_target_once_for_many_roles(fhir):
    with _counting() as calls:
        response = fhir("POST", "", data=json.dumps(_bundle(_practitioner(conforming=True), 20)))
        assert response.status_code == 200, response.text
        assert [c.args[1] for c in calls.call_args_list] == [PRACTITIONER_PROFILE]
    assert Resource.objects.filter(resource_type="PractitionerRole").count() == 20


def test_a_transaction_with_a_non_conforming_target_writes_nothing(fhir):
    response = fhir("POST", "", data=json.dumps(_bundle(_practitioner(conforming=False), 3)))
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert PRACTITIONER_PROFILE in issue["diagnostics"]
    assert issue["diagnostics"].startswith("PractitionerRole/")
    assert not Resource.objects.filter(
        resource_type__in=["Practitioner", "PractitionerRole"]
    ).exists()


def test_a_reference_to_a_missing_target_is_the_existence_checks_refusal(fhir):
    response = fhir("POST", "PractitionerRole", data=json.dumps(_role("Practitioner/nowhere")))
    assert response.status_code == 422
    assert "does not exist" in response.json()["issue"][0]["diagnostics"]


def test_the_cache_is_bounded():
    verdicts = targets._Verdicts(3)
    for n in range(5):
        verdicts.put(("Practitioner", str(n), 1, None, "p"), True)
    assert len(verdicts) == 3
    assert verdicts.get(("Practitioner", "0", 1, None, "p")) is None
    assert verdicts.get(("Practitioner", "4", 1, None, "p")) is True


def test_unchanged_examples_keep_their_copy():
    """_example hands out copies: a test's edits do not leak into the next."""
    first = _example("Practitioner", "Counselor")
    first["active"] = False
    assert _example("Practitioner", "Counselor")["active"] is True
    assert copy.deepcopy(first) == first
