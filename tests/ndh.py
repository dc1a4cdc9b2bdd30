"""The NDH IG's example resources as test data (source and licence: tests/data/ndh/README.md).

Each call returns fresh copies, so a test may change what it gets.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "ndh" / "examples"
NDH = "http://hl7.org/fhir/us/ndh/StructureDefinition/"


@cache
def _read_all() -> tuple[dict, ...]:
    return tuple(json.loads(p.read_text()) for p in sorted(DATA.glob("*.json")))


def examples() -> list[dict]:
    """The IG's 76 examples of the directory's types, in file name order (type, then id)."""
    return copy.deepcopy(list(_read_all()))


def example(resource_type: str, logical_id: str) -> dict:
    return copy.deepcopy(
        next(r for r in _read_all() if (r["resourceType"], r["id"]) == (resource_type, logical_id))
    )
