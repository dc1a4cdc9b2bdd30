"""What the server indexes for each Plan-Net parameter equals what the parameter's expression
selects (the oracle), resource by resource: the values behind every search, checked below the
query layer. This is where a direct accessor standing in for a FHIRPath expression must be shown
to extract the same values as the expression itself.

Reads the index tables (directory.models) directly; date parameters are left to the searches in
test_search_parameters.py, their index being the server's own business.
"""

from __future__ import annotations

import pytest

from . import oracle, package

pytestmark = pytest.mark.django_db

INDEXED_TYPES = ("string", "token", "reference")
PARAMS = [
    pytest.param(p, base, id=f"{p['id']}@{base}")
    for p in package.PLAN_NET_PARAMS
    if p["type"] in INDEXED_TYPES
    for base in p["base"]
]


def expected_rows(param: dict, resource: dict) -> set[tuple[str, ...]]:
    nodes = oracle.selected(param, resource)
    if param["type"] == "string":
        return {(oracle.fold(p),) for n in nodes for p in oracle.string_parts(n) if p.strip()}
    if param["type"] == "token":
        return {(t.system or "", t.code) for n in nodes for t in oracle.tokens(n)}
    return {tuple(k.split("/")) for n in nodes for k in oracle.referenced_keys(n)}


def stored_rows(param: dict, base: str) -> dict[str, set[tuple[str, ...]]]:
    from directory.models import ReferenceIndex, StringIndex, TokenIndex

    model, columns = {
        "string": (StringIndex, ("value",)),
        "token": (TokenIndex, ("system", "code")),
        "reference": (ReferenceIndex, ("target_type", "target_id")),
    }[param["type"]]
    rows = model.objects.filter(resource_type=base, param=param["code"])
    if model is ReferenceIndex:
        rows = rows.filter(external=False)
    found: dict[str, set] = {}
    for logical_id, *values in rows.values_list("resource__logical_id", *columns):
        found.setdefault(logical_id, set()).add(tuple(values))
    return found


@pytest.mark.parametrize(("param", "base"), PARAMS)
def test_index_rows_equal_what_the_expression_selects(server, conformance_data, param, base):
    stored = stored_rows(param, base)
    wrong = []
    for resource in package.of_type(base):
        expected, got = expected_rows(param, resource), stored.get(resource["id"], set())
        if expected != got:
            wrong.append(
                f"{resource['id']}: missing {sorted(expected - got)}, "
                f"unexpected {sorted(got - expected)}"
            )
    assert not wrong, "; ".join(wrong)
