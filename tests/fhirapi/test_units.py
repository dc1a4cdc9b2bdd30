"""Header parsing helpers in isolation."""

from __future__ import annotations

import pytest

from fhirapi.negotiation import accepts_json, format_is_json
from fhirapi.prefer import parse_prefer


@pytest.mark.parametrize(
    ("header", "return_", "handling"),
    [
        (None, "representation", "strict"),
        ("", "representation", "strict"),
        ("return=minimal", "minimal", "strict"),
        ("return=OperationOutcome", "OperationOutcome", "strict"),
        ("return=operationoutcome", "OperationOutcome", "strict"),
        ('return="minimal"', "minimal", "strict"),
        ("return=minimal, handling=strict", "minimal", "strict"),
        ("return=minimal, handling=lenient", "minimal", "lenient"),
        ("handling=strict; return=representation", "representation", "strict"),
        ("return=bogus, handling=maybe", "representation", "strict"),
        ("return=minimal, return=representation", "minimal", "strict"),
    ],
)
def test_parse_prefer(header, return_, handling):
    prefs = parse_prefer(header)
    assert (prefs.return_, prefs.handling) == (return_, handling)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, True),
        ("application/fhir+json", True),
        ("application/json;q=0.5", True),
        ("application/json;q=0", False),
        ("application/json;q=bogus", False),
        ("text/html", False),
        ("text/html, */*;q=0.1", True),
        (",,,", False),
    ],
)
def test_accepts_json(header, ok):
    assert accepts_json(header) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("json", True), ("JSON", True), ("application/fhir json", True), ("xml", False), ("", False)],
)
def test_format_is_json(value, ok):
    assert format_is_json(value) is ok
