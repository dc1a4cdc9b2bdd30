"""`_has` (one level and nested), `_include:iterate` / `_revinclude:iterate` and `_include=T:*`,
judged by the oracle: `_has` by following each source's fhirpath-selected references back to the
target, the includes by the closure of those references among the stored resources."""

from __future__ import annotations

import pytest

from . import cases
from .conftest import STRICT, describe

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("case", cases.has_cases(), ids=lambda c: c.name)
def test_has(server, case):
    result = server.search(case.base, case.query, **STRICT)
    assert result.status == 200 and result.matches == case.expected, describe(result, case)


@pytest.mark.parametrize(
    "case", cases.iterate_cases() + cases.wildcard_cases(), ids=lambda c: c.name
)
def test_include(server, case):
    result = server.search(case.base, f"{case.query}&_count=200", **STRICT)
    assert result.status == 200 and result.matches == case.expected, describe(result, case)
    # A match on one page may come as an include on another: only what is not a match counts.
    matched = {f"{case.base}/{i}" for i in case.expected}
    added = result.included - matched
    missing = sorted(case.included - added)
    unexpected = sorted(added - case.included - case.may_include)
    assert not missing and not unexpected, f"includes missing {missing}, unexpected {unexpected}"
