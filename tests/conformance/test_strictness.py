"""A directory never widens an answer silently: an unknown parameter or modifier is refused
by default, and only `Prefer: handling=lenient` gets today's ignore-and-warn behaviour."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

LENIENT = {"HTTP_PREFER": "handling=lenient"}
REFUSED = [
    ("Organization", "no-such-parameter=x"),
    ("Organization", "name:exat=Acme"),
    ("PractitionerRole", "location.no-such-parameter=x"),
    ("PractitionerRole", "practitioner.name:exat=Smith"),
]


@pytest.mark.parametrize(("base", "query"), REFUSED, ids=[q for _, q in REFUSED])
def test_refused_by_default(directory, base, query):
    result = directory.search(base, query)
    assert result.status == 400, f"HTTP {result.status}"
    assert result.body["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("base", "query"), REFUSED, ids=[q for _, q in REFUSED])
def test_lenient_handling_ignores(directory, base, query):
    result = directory.search(base, query, **LENIENT)
    assert result.status == 200, f"HTTP {result.status}: {result.body}"
