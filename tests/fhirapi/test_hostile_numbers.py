"""Numbers and instants a client writes are read without a 500: other scripts' digits,
superscripts, thousands of digits, values beyond a column's range, instants beyond year 9999."""

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
