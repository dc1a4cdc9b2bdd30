"""Hostile values a client writes are refused without a 500: numbers in other scripts' digits,
superscripts, thousands of digits or beyond a column's range, instants beyond year 9999, and a
NUL in an id or a resource, which PostgreSQL cannot even compare."""

from __future__ import annotations

import json

import pytest

from directory.numbers import MAX_BIGINT, bounded_integer, capped_integer
from tests.factories import OrganizationFactory

from .conftest import FHIR_JSON, outcome_issue

pytestmark = pytest.mark.django_db

HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("text", "capped", "bounded"),
    [
        ("7", 7, 7),
        ("007", 7, 7),
        ("0", 0, 0),
        ("²", None, None),
        ("٣", None, None),
        ("-1", None, None),
        ("", None, None),
        (" 1", None, None),
        (HUGE, 200, None),
        (str(MAX_BIGINT), 200, MAX_BIGINT),
        (str(MAX_BIGINT + 1), 200, None),
    ],
)
def test_integers_are_ascii_and_in_range(text, capped, bounded):
    assert capped_integer(text, 200) == capped
    assert bounded_integer(text) == bounded


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/fhir/Organization?_count={HUGE}", 200),
        ("/fhir/Organization?_count=²", 400),
        (f"/fhir/Organization/_history?_count={HUGE}", 200),
        ("/fhir/Organization/_history?_count=²", 400),
        ("/fhir/Organization/o1/_history/²", 404),
        (f"/fhir/Organization/o1/_history/{HUGE}", 404),
        (f"/fhir/Organization/o1/_history/{MAX_BIGINT + 1}", 404),
        ("/fhir/Organization/_history?_since=9999-12-31T23:59:59-23:59", 400),
    ],
)
def test_hostile_numbers_in_reads_and_searches(api, path, status):
    OrganizationFactory.create(id="o1")
    response = api.get(path)
    assert response.status_code == status, response.content[:300]
    if status != 200:
        outcome_issue(response)


@pytest.mark.parametrize("version", [HUGE, str(MAX_BIGINT + 1), "²"])
def test_hostile_if_match_is_a_400(api, version):
    content = OrganizationFactory.create(id="o2")
    response = api.generic(
        "PUT",
        "/fhir/Organization/o2",
        json.dumps(content),
        content_type=FHIR_JSON,
        HTTP_IF_MATCH=f'W/"{version}"',
    )
    assert response.status_code == 400
    assert "If-Match" in outcome_issue(response)["diagnostics"]


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Organization/org%00",
        "/fhir/Organization/org%00/_history",
        "/fhir/Organization/org%00/_history/1",
    ],
)
def test_nul_in_an_id_is_not_found(api, path):
    response = api.get(path)
    assert response.status_code == 404
    outcome_issue(response)


def test_nul_in_an_id_deletes_nothing(api):
    assert api.delete("/fhir/Organization/org%00").status_code == 400


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Harbor\u0000Clinic"},
        {"alias": ["a\u0000"]},
        {"extension": [{"url": "http://example.org/x", "valueString": "\u0000"}]},
    ],
)
def test_nul_in_a_resource_is_a_400(api, change):
    content = {**OrganizationFactory.build(id=None), **change}
    body = json.dumps(content)  # the NUL as the escape \u0000, as a JSON client sends it
    assert "\\u0000" in body
    response = api.generic("POST", "/fhir/Organization", body, content_type=FHIR_JSON)
    assert response.status_code == 400, response.content[:300]
    assert "NUL" in outcome_issue(response)["diagnostics"]
