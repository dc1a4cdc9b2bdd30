"""Every Plan-Net SearchParameter, and every chain it declares, returns exactly what the
parameter's own FHIRPath expression selects in the stored resources.

The values come from what the expression selects (cases.py), the expected ids from the oracle
(oracle.py). Searches ask `handling=strict`, so a parameter the server does not know fails with
its reason rather than a silently widened answer (which the values matching nothing would
catch too).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory.search import probes

from . import cases
from .conftest import STRICT, describe

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("case", cases.parameter_cases(), ids=lambda c: c.name)
def test_search_parameter(server, case):
    result = server.search(case.base, case.query, **STRICT)
    assert result.status == 200 and result.matches == case.expected, describe(result, case)


@pytest.mark.parametrize("case", cases.chain_cases(), ids=lambda c: c.name)
def test_chain(server, case):
    result = server.search(case.base, case.query, **STRICT)
    assert result.status == 200 and result.matches == case.expected, describe(result, case)


# `:contains` searches walked from the searched type (directory/search/probes.py, PostgreSQL),
# as at scale when their matches are common: in windows of two resources, each page finished by
# the search as planned.
SUBSTRINGS = [c for c in cases.parameter_cases() + cases.chain_cases() if ":contains=" in c.name]


@pytest.mark.parametrize("case", SUBSTRINGS, ids=lambda c: c.name)
def test_contains_walked(server, case, monkeypatch):
    monkeypatch.setattr(probes, "WALK", 2)
    with CaptureQueriesContext(connection) as captured:
        result = server.search(case.base, f"{case.query}&_count=3", **STRICT)
    assert result.status == 200 and result.matches == case.expected, describe(result, case)
    walked = any("CASE WHEN EXISTS" in q["sql"] for q in captured.captured_queries)
    assert walked == (connection.vendor == "postgresql")
