"""`special` parameters: `near` on a position index; any other special parameter is refused.

FHIR R4 defines one position parameter, Location `near` (expression `Location.position`); the
geometry and query live in `search/near.py` and `positions.py`. NDH's other special parameter
(`contains`, a geometry test) has no index and is answered 400 not-supported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from ...errors import InvalidRequest
from ...models import PositionIndex
from ...positions import POSITION_PARAMS, position_row
from ...searchparams import SearchParam
from ..plan import Plan
from .base import IndexKind, IndexTable, Row

# The grid band and the coordinates that `near` reads (see positions.py).
POSITIONS = IndexTable(PositionIndex, ("band", "latitude", "longitude"))


def is_position_param(param: SearchParam) -> bool:
    declared = POSITION_PARAMS.get(param.base)
    return declared is not None and declared[0] == param.name


class SpecialKind(IndexKind):
    tables = (POSITIONS,)
    modifiers = frozenset()  # `near` takes no modifier, not even :missing

    def evaluates(self, param: SearchParam) -> bool:
        return is_position_param(param)

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        if not is_position_param(param):
            return
        row = position_row(element)
        if row is not None:
            yield POSITIONS, param.name, row

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        if not is_position_param(param):
            raise InvalidRequest(
                f"Search parameter '{param.name}' (special) is not supported",
                code="not-supported",
                expression=[raw_name],
            )
        from ..near import near_filter

        return near_filter(plan, param, raw_name, modifier, value)
