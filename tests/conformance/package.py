"""The vendored Plan-Net package data the conformance tests load and judge the server by.

Plain data: the 49 Plan-Net examples and 55 SearchParameters (the shared copy, tests/plannet.py),
and from `data/` (see its README) a few resources of our own that give the examples positions and
periods to search, and the R4 core SearchParameters the tests also need.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from tests import plannet

DATA = Path(__file__).parent / "data"


def _read_all(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def key(resource: dict) -> str:
    """`Type/id`, how references, expectations and failures name a resource."""
    return f"{resource['resourceType']}/{resource['id']}"


EXAMPLES: list[dict] = plannet.examples()
EXTRAS: list[dict] = _read_all(DATA / "extra")
# What the server holds while the conformance tests run: the oracle judges against all of it.
RESOURCES: dict[str, dict] = {key(r): r for r in EXAMPLES + EXTRAS}
PLAN_NET_PARAMS: list[dict] = plannet.search_parameters()
CORE_PARAMS: list[dict] = [
    entry["resource"]
    for entry in json.loads((DATA / "core" / "search-parameters.json").read_text())["entry"]
]
TYPES = sorted({r["resourceType"] for r in RESOURCES.values()})


def of_type(resource_type: str) -> list[dict]:
    return [r for r in RESOURCES.values() if r["resourceType"] == resource_type]


@cache
def definition(base: str, code: str) -> dict | None:
    """The SearchParameter for `code` on `base`: Plan-Net's when it defines one, else R4 core's."""
    for params in (PLAN_NET_PARAMS, CORE_PARAMS):
        for param in params:
            if param["code"] == code and base in param["base"]:
                return param
    return None
