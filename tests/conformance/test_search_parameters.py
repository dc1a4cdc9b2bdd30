"""Every Plan-Net SearchParameter, and every chain it declares, returns exactly what the
parameter's own FHIRPath expression selects in the stored resources.

The values come from what the expression selects (cases.py), the expected ids from the oracle
(oracle.py). Searches ask `handling=strict`, so a parameter the server does not know fails with
its reason rather than a silently widened answer (which the values matching nothing would
catch too).
"""

from __future__ import annotations

import pytest

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
