"""`special` parameters: `near` on a position index, `contains` on a boundary index.

FHIR R4 defines one position parameter, Location `near` (expression `Location.position`); its
geometry and query live in `search/near.py` and `positions.py`. NDH (and R5) Location
`contains` reads the `location-boundary-geojson` extension: its polygons' bounding boxes and
shapes are indexed here, the test is `search/contains.py` and `boundaries.py`. Any other special
parameter has no index and is answered 400 not-supported.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from ...boundaries import BOUNDARY_PARAMS, BoundaryError, boundary_shapes
from ...errors import InvalidRequest
from ...models import BoundaryIndex, BoundaryShape, PositionIndex
from ...positions import POSITION_PARAMS, position_row
from ...searchparams import SearchParam
from ..plan import Plan
from .base import IndexKind, IndexTable, Row

# The grid band and the coordinates that `near` reads (see positions.py).
POSITIONS = IndexTable(PositionIndex, ("band", "latitude", "longitude"))
# A boundary polygon's box, once per latitude band it spans, and the polygon itself.
BOXES = IndexTable(BoundaryIndex, ("band", "min_lon", "max_lon", "min_lat", "max_lat", "part"))
SHAPES = IndexTable(BoundaryShape, ("part", "shape"))


def is_position_param(param: SearchParam) -> bool:
    declared = POSITION_PARAMS.get(param.base)
    return declared is not None and declared[0] == param.name


def is_boundary_param(param: SearchParam) -> bool:
    return BOUNDARY_PARAMS.get(param.base) == param.name


class SpecialKind(IndexKind):
    tables = (POSITIONS, BOXES, SHAPES)
    modifiers = frozenset()  # `near` and `contains` take no modifier, not even :missing

    def evaluates(self, param: SearchParam) -> bool:
        return is_position_param(param) or is_boundary_param(param)

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        if is_boundary_param(param):
            yield from boundary_rows(param.name, element)
        elif is_position_param(param):
            row = position_row(element)
            if row is not None:
                yield POSITIONS, param.name, row

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        if is_boundary_param(param):
            from ..contains import contains_condition

            return contains_condition(plan.resource_type, param.name, raw_name, value)
        if not is_position_param(param):
            raise InvalidRequest(
                f"Search parameter '{param.name}' (special) is not supported",
                code="not-supported",
                expression=[raw_name],
            )
        from ..near import near_filter

        return near_filter(plan, param, raw_name, modifier, value)


def boundary_rows(name: str, attachment: Any) -> Iterator[Row]:
    """A boundary's rows: each polygon's shape and its box in every band it spans.

    Writes refuse an invalid boundary (validation.py); one stored before that check, or loaded
    by a path that skips it, is left out of the index rather than failing the write or reindex.
    """
    try:
        shapes = boundary_shapes(attachment)
    except BoundaryError:
        return
    for shape in shapes:
        text = shape.to_text()
        # Named by its content, so parts of several boundary extensions never collide.
        part = zlib.crc32(text.encode()) & 0x7FFFFFFF
        yield SHAPES, name, (part, text)
        box = (shape.min_lon, shape.max_lon, shape.min_lat, shape.max_lat, part)
        for band in range(math.floor(shape.min_lat), math.floor(shape.max_lat) + 1):
            yield BOXES, name, (band, *box)
