"""`contains` (NDH and R5 Location, type special): Locations whose boundary holds a point.

Value: `[latitude]|[longitude]` in WGS84 degrees, the position syntax of `near` without a
distance; comma-separated points are alternatives (a boundary holding any of them), repeated
`contains` parameters must all hold. A point on a boundary's edge is inside it.

Two steps: the bounding boxes of the boundaries' polygons (BoundaryIndex, by latitude band) give
the candidates in one index range scan; each candidate polygon is then tested exactly
(directory/boundaries.py). The matching ids go back to the search as one array parameter, so
counting, sorting and paging stay in the database.
"""

from __future__ import annotations

import json

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from .. import positions
from ..boundaries import covering
from ..errors import InvalidRequest
from ..models import BoundaryIndex, BoundaryShape
from .near import MAX_POINTS, parse_position
from .values import or_values, unescape


def contains_condition(resource_type: str, param: str, raw_name: str, value: str) -> Q:
    """Resources (as a Q over Resource) with a boundary holding any of the value's points."""
    points = [parse_position(raw_name, unescape(v)) for v in or_values(value)]
    if len(points) > MAX_POINTS:
        raise InvalidRequest(
            f"'{raw_name}': a search may name at most {MAX_POINTS} points", expression=[raw_name]
        )
    found: set[int] = set()
    for latitude, longitude in points:
        found |= containing(resource_type, param, latitude, longitude)
    return Q(pk__in=_id_list(sorted(found)))


# Resources whose shapes are read and tested together.
SHAPE_CHUNK = 500


def containing(resource_type: str, param: str, latitude: float, longitude: float) -> set[int]:
    """Primary keys of the resources whose boundary holds the point."""
    boxes = BoundaryIndex.objects.filter(
        resource_type=resource_type,
        param=param,
        band=positions.band_of(latitude),
        min_lon__lte=longitude,
        max_lon__gte=longitude,
        min_lat__lte=latitude,
        max_lat__gte=latitude,
    )
    candidates = set(boxes.values_list("resource_id", "part"))
    pks = sorted({pk for pk, _ in candidates})
    found: set[int] = set()
    # Shapes are read and tested a chunk of resources at a time: memory stays bounded however
    # many boundaries hold the point (statewide service areas), and each IN list stays short.
    for start in range(0, len(pks), SHAPE_CHUNK):
        shapes = BoundaryShape.objects.filter(
            resource_type=resource_type,
            param=param,
            resource_id__in=pks[start : start + SHAPE_CHUNK],
        ).values_list("resource_id", "part", "shape")
        tested = [(pk, text) for pk, part, text in shapes if (pk, part) in candidates]
        hits = covering([text for _, text in tested], latitude, longitude)
        found.update(pk for (pk, _), hit in zip(tested, hits, strict=True) if hit)
    return found


def _id_list(pks: list[int]) -> RawSQL:
    """The ids as a subquery of one parameter, however many they are (no bound-variable limit)."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [pks])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(pks)])
