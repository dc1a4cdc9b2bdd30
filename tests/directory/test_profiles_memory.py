"""Clean element values are walked once (profiles/validator.py `_walk_value`), same verdicts."""

import pytest

from directory import profiles
from directory.profiles import validator

ADDRESS = {"line": ["1 Main St"], "city": "Springfield", "state": "IL", "country": "US"}


@pytest.fixture(autouse=True)
def empty_memory():
    validator._clean.clear()
    yield
    validator._clean.clear()


@pytest.fixture
def judged(monkeypatch):
    """The values walked, as (element path, value)."""
    seen = []
    judge = validator._judge_value

    def counted(run, element, value, type_code, vpath):
        seen.append((element.path, value))
        judge(run, element, value, type_code, vpath)

    monkeypatch.setattr(validator, "_judge_value", counted)
    return seen


def organization(**elements: object) -> dict:
    return {"resourceType": "Organization", "name": "A", **elements}


def test_a_clean_value_is_walked_once(judged):
    assert profiles.validate(organization(address=[ADDRESS])) == []
    assert ("Organization.address", ADDRESS) in judged
    judged.clear()
    assert profiles.validate(organization(id="b", address=[dict(ADDRESS)])) == []
    assert [path for path, _ in judged if path.startswith("Organization.address")] == []


def test_a_failing_value_is_walked_every_time(judged, monkeypatch):
    home = {**ADDRESS, "use": "home"}  # org-2: an organization's address is never home
    first = profiles.validate(organization(address=[home]))
    second = profiles.validate(organization(address=[ADDRESS, home]))
    assert [i["expression"] for i in first] == [["Organization.address[0]"]]
    assert [i["expression"] for i in second] == [["Organization.address[1]"]]
    monkeypatch.setattr(validator, "_walk_value", validator._judge_value)
    assert profiles.validate(organization(address=[ADDRESS, home])) == second


def test_a_local_reference_is_judged_against_each_resource(monkeypatch):
    """`#o` names a contained resource: the same reference JSON is right in one resource and
    wrong in the next, so its walk is never remembered (also were ref-1 judged directly)."""
    direct = validator.direct_verdict
    monkeypatch.setattr(
        validator,
        "direct_verdict",
        lambda expression, node: (
            True if "%rootResource" in expression else direct(expression, node)
        ),
    )
    role = {
        "resourceType": "PractitionerRole",
        "practitioner": {"reference": "#o"},
        "contained": [{"resourceType": "Practitioner", "id": "o"}],
    }
    assert profiles.validate(role) == []
    role["contained"][0] = {"resourceType": "Organization", "id": "o", "name": "O"}
    assert [i["expression"] for i in profiles.validate(role)] == [
        ["PractitionerRole.practitioner.reference"]
    ]


def test_a_verdict_of_the_fhirpath_engine_is_not_remembered(judged, monkeypatch):
    """The engine may read %resource: a value it judged is walked again in the next resource."""
    monkeypatch.setattr(validator, "direct_verdict", lambda expression, node: None)
    profiles.validate(organization(address=[ADDRESS]))
    judged.clear()
    profiles.validate(organization(id="b", address=[ADDRESS]))
    assert ("Organization.address", ADDRESS) in judged


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(validator, "MAX_CLEAN_VALUES", 5)
    for n in range(20):
        profiles.validate(organization(address=[{**ADDRESS, "city": f"C{n}"}]))
    assert len(validator._clean) == 5
