"""Repeated elements are validated once (directory/fragments.py), with the same verdicts."""

import copy

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.codeableconcept import CodeableConcept

from directory import fragments
from directory.errors import InvalidResource
from directory.validation import validate_resource

SPECIALTY = {
    "coding": [
        {"system": "http://nucc.org/provider-taxonomy", "code": "207R00000X", "display": "IM"}
    ]
}


def role(logical_id: str, **elements: object) -> dict:
    return {"resourceType": "PractitionerRole", "id": logical_id, "active": True, **elements}


@pytest.fixture(autouse=True)
def empty_cache():
    fragments._models.clear()
    yield
    fragments._models.clear()


def test_an_identical_element_is_validated_once(monkeypatch):
    validate_resource("PractitionerRole", role("r1", specialty=[SPECIALTY]), canonical=False)
    calls = []
    original = CodeableConcept.model_validate.__func__

    def counted(cls, *args, **kwargs):
        calls.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(CodeableConcept, "model_validate", classmethod(counted))
    content = role("r2", specialty=[copy.deepcopy(SPECIALTY)])
    assert validate_resource("PractitionerRole", content, canonical=False) is content
    assert calls == []
    assert content["specialty"] == [SPECIALTY]  # the content itself is left as JSON


def test_the_canonical_form_is_unchanged_by_a_remembered_element():
    first = validate_resource("PractitionerRole", role("r1", specialty=[SPECIALTY, SPECIALTY]))
    second = validate_resource("PractitionerRole", role("r1", specialty=[SPECIALTY, SPECIALTY]))
    assert first == second == role("r1", specialty=[SPECIALTY, SPECIALTY])


def issues_of(content: dict) -> list[dict]:
    with pytest.raises(InvalidResource) as caught:
        validate_resource(content["resourceType"], content, canonical=False)
    return caught.value.issues()


@pytest.mark.parametrize(
    "bad",
    [
        {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": 5}]},
        {"coding": [{"system": "x", "code": "y", "bogus": 1}]},
        {"coding": "not a list"},
        {"text": "t", "coding": [None]},
        "not an object",
    ],
)
def test_a_bad_element_is_refused_as_without_the_cache(bad, monkeypatch):
    content = role("r1", specialty=[SPECIALTY, bad], code=[SPECIALTY])
    validate_resource("PractitionerRole", role("r0", specialty=[SPECIALTY]), canonical=False)
    cached = issues_of(content)
    again = issues_of(content)  # the failure is not remembered as a success
    monkeypatch.setattr(fragments, "substituted", lambda model, content: content)
    assert cached == again == issues_of(content)
    assert any("specialty[1]" in issue["expression"][0] for issue in cached)


@pytest.mark.parametrize("values", [(1, 1.0, True), (True, 1.0, 1), ("1", 1, 1.0)])
def test_equal_values_of_other_json_types_are_told_apart(values, monkeypatch):
    """1 == 1.0 == True in Python; as JSON they differ, and so may their canonical forms."""

    def canonical(value: object) -> dict | list[dict]:
        extension = [{"url": "http://e.org/x", "valueDecimal": value}]
        try:
            return validate_resource("PractitionerRole", role("r1", extension=extension))
        except InvalidResource as exc:
            return exc.issues()

    cached = [canonical(value) for value in values]
    monkeypatch.setattr(fragments, "substituted", lambda model, content: content)
    assert cached == [canonical(value) for value in values]


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(fragments, "MAX_FRAGMENTS", 3)
    model = get_fhir_model_class("PractitionerRole")
    for n in range(10):
        fragments.substituted(model, role("r", telecom=[{"system": "phone", "value": f"{n}"}]))
    assert len(fragments._models) == 3
    long_text = {"system": "phone", "value": "9" * fragments.MAX_FRAGMENT_CHARS}
    fragments.substituted(model, role("r", telecom=[long_text]))
    assert all(long_text["value"] not in text for _, text in fragments._models)
