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
def test_refused_by_default(server, base, query):
    result = server.search(base, query)
    assert result.status == 400, f"HTTP {result.status}"
    assert result.body["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("base", "query"), REFUSED, ids=[q for _, q in REFUSED])
def test_lenient_handling_ignores_and_says_so(server, base, query):
    result = server.search(base, query, **LENIENT)
    assert result.status == 200, f"HTTP {result.status}: {result.body}"
    outcomes = [e for e in result.entries if e.get("search", {}).get("mode") == "outcome"]
    ignored = query.split("=")[0].split(".")[-1].split(":")[0]
    notes = [i.get("diagnostics", "") for e in outcomes for i in e["resource"]["issue"]]
    assert any(ignored in note for note in notes), notes
