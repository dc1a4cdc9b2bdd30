"""`near` (FHIR R4 Location, type special): positions within a distance, sorted and annotated by it.

Value: `[latitude]|[longitude]|[distance]|[units]` in WGS84 degrees (R4 SearchParameter
Location-near). Choices where the specification leaves them to the server:

- distance omitted: the setting FHIR_NEAR_DEFAULT_DISTANCE_KM (50 km); units omitted: km;
- units: the UCUM codes `km`, `m`, `[mi_i]` (international mile), `[mi_us]` (US survey mile) and
  `[nmi_i]` (nautical mile); anything else (including the non-UCUM `mi`) is refused with 400;
- comma-separated points are alternatives (within reach of any); repeated `near` parameters must
  all hold; at most MAX_POINTS points in all. The distance of a resource is its distance to the
  closest point named;
- `_sort=near` (as HAPI FHIR spells it) orders by that distance, ties by insertion order;
- each matched Location carries it as the `location-distance` extension on `entry.search`, in the
  units of the first point named.

The filter is a semi-join into the position index: a bounding-box range scan on its B-tree, then
the exact great-circle test in SQL (haversine term, see directory/positions.py), so counting and
paging stay in the database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import F, FloatField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Cos, Least, Power, Radians, Sin

from .. import positions
from ..errors import InvalidRequest
from ..models import PositionIndex
from .values import any_of, or_values, split, unescape

if TYPE_CHECKING:
    from ..registry import SearchParam
    from .plan import Plan

DISTANCE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/location-distance"
UCUM = "http://unitsofmeasure.org"
SORT_KEY = "near"

# UCUM code -> (kilometres per unit, human-readable unit).
UNITS: dict[str, tuple[float, str]] = {
    "km": (1.0, "km"),
    "m": (0.001, "m"),
    "[mi_i]": (1.609344, "mi"),
    "[mi_us]": (1.609347218694437, "mi (US survey)"),  # 5280 ft of 1200/3937 m
    "[nmi_i]": (1.852, "nmi"),
}
DEFAULT_UNIT = "km"
# Boxes spanning more latitude bands than this read them as one range instead of band by band.
MAX_BANDS = 40
# Points per search at most: each is one more index range scan and term in every sort key.
MAX_POINTS = 20

# FHIR's decimal syntax, so NaN, Infinity, hex and padded numbers are refused.
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class NearPoint:
    latitude: float
    longitude: float
    distance_km: float
    unit: str  # UCUM code the distance was given in, used for the reported distance


# ---------------------------------------------------------------- parsing


def parse_points(raw_name: str, value: str) -> list[NearPoint]:
    """The points of one `near` value (comma-separated alternatives); 400 on any bad part."""
    return [_parse_point(raw_name, unescape(v)) for v in or_values(value)]


def _parse_point(raw_name: str, text: str) -> NearPoint:
    parts = split(text, "|")
    if not 2 <= len(parts) <= 4:
        raise _invalid(raw_name, f"'{text[:80]}' is not latitude|longitude|distance|units")
    parts += [""] * (4 - len(parts))
    latitude = _number(raw_name, "latitude", parts[0], -90, 90)
    longitude = _number(raw_name, "longitude", parts[1], -180, 180)
    unit = parts[3] or DEFAULT_UNIT
    if unit not in UNITS:
        raise _invalid(
            raw_name,
            f"unit '{unit[:40]}' is not supported; use a UCUM code: {', '.join(UNITS)}",
        )
    if parts[2]:
        distance = _number(raw_name, "distance", parts[2], 0, math.inf) * UNITS[unit][0]
    else:
        distance = settings.FHIR_NEAR_DEFAULT_DISTANCE_KM
    return NearPoint(latitude, longitude, min(distance, positions.MAX_DISTANCE_KM), unit)


def parse_position(raw_name: str, text: str) -> tuple[float, float]:
    """(latitude, longitude) of a `[latitude]|[longitude]` value (Location `contains`)."""
    parts = split(text, "|")
    if len(parts) != 2:
        raise _invalid(raw_name, f"'{text[:80]}' is not latitude|longitude")
    return (
        _number(raw_name, "latitude", parts[0], -90, 90),
        _number(raw_name, "longitude", parts[1], -180, 180),
    )


def _number(raw_name: str, what: str, text: str, low: float, high: float) -> float:
    number = float(text) if _DECIMAL.match(text) else math.nan
    if not math.isfinite(number):
        raise _invalid(raw_name, f"{what} '{text[:40]}' is not a decimal number")
    if not low <= number <= high:
        bounds = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise _invalid(raw_name, f"{what} {text[:40]} must be {bounds}")
    return number


def _invalid(raw_name: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"'{raw_name}': {message}", expression=[raw_name])


# ---------------------------------------------------------------- SQL


def _haversine_sql(point: NearPoint) -> Combinable:
    """hav(central angle) from the index row's position to the point, as a SQL expression."""
    lat0 = math.radians(point.latitude)
    lat = Radians(F("latitude"))
    half_dlat = (lat - Value(lat0)) / Value(2.0)
    half_dlon = (Radians(F("longitude")) - Value(math.radians(point.longitude))) / Value(2.0)
    return Power(Sin(half_dlat), 2) + Value(math.cos(lat0)) * Cos(lat) * Power(Sin(half_dlon), 2)


def _box_condition(point: NearPoint) -> Q:
    """The bounding box on the index: its bands (each one longitude range scan), then latitude."""
    box = positions.bounding_box(point.latitude, point.longitude, point.distance_km)
    first, last = positions.band_of(box.min_lat), positions.band_of(box.max_lat)
    if box.lon_ranges is not None and last - first < MAX_BANDS:
        bands = Q(band__in=list(range(first, last + 1)))
    else:
        bands = Q(band__gte=first, band__lte=last)  # a range scan over the bands is as good
    condition = bands & Q(latitude__gte=box.min_lat, latitude__lte=box.max_lat)
    if box.lon_ranges is not None:
        condition &= any_of(
            Q(longitude__gte=west, longitude__lte=east) for west, east in box.lon_ranges
        )
    return condition


def _rows_near(resource_type: str, param: str, point: NearPoint) -> QuerySet[PositionIndex]:
    """Position index rows within the point's distance."""
    limit = positions.haversine_limit(point.distance_km)
    return (
        PositionIndex.objects.filter(resource_type=resource_type, param=param)
        .filter(_box_condition(point))
        .alias(near_term=_haversine_sql(point))
        .filter(near_term__lte=limit)
    )


def near_condition(
    points: list[NearPoint], resource_type: str = "Location", param: str = "near"
) -> Q:
    """Resources (as a Q over Resource) within reach of any of the points: a semi-join."""
    return any_of(
        Q(pk__in=_rows_near(resource_type, param, point).values("resource_id")) for point in points
    )


def distance_order(points: list[NearPoint], param: str = "near") -> Subquery:
    """A sort key over Resource that orders like the distance to the closest point."""
    terms = [_haversine_sql(p) for p in points]
    closest = terms[0] if len(terms) == 1 else Least(*terms)
    # The resource id implies its type: position_resource_idx answers this index-only.
    rows = PositionIndex.objects.filter(resource_id=OuterRef("pk"), param=param)
    return Subquery(rows.annotate(term=closest).values("term")[:1], output_field=FloatField())


# ---------------------------------------------------------------- reported distances


def distance_extension(points: list[NearPoint], latitude: float, longitude: float) -> dict:
    """The `location-distance` extension for a position: distance to the closest point."""
    km = min(distance_km_to(p, latitude, longitude) for p in points)
    unit = points[0].unit
    per_unit, display = UNITS[unit]
    return {
        "url": DISTANCE_EXTENSION,
        "valueDistance": {
            "value": round(km / per_unit, 3),
            "unit": display,
            "system": UCUM,
            "code": unit,
        },
    }


def distance_km_to(point: NearPoint, latitude: float, longitude: float) -> float:
    return positions.distance_km(point.latitude, point.longitude, latitude, longitude)


def positions_of(resource_pks: list[int], param: str = "near") -> dict[int, tuple[float, float]]:
    """(latitude, longitude) of each of these resources that has a position."""
    rows = PositionIndex.objects.filter(resource_id__in=resource_pks, param=param)
    values = rows.values_list("resource_id", "latitude", "longitude")
    return {pk: (lat, lon) for pk, lat, lon in values}


# ---------------------------------------------------------------- the search engine's hooks


def near_filter(plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str) -> Q:
    """filter_condition for a `special` parameter: `near` on a type with a position index."""
    declared = positions.POSITION_PARAMS.get(plan.resource_type)
    if declared is None or declared[0] != param.name:
        raise InvalidRequest(
            f"Search parameter '{param.name}' is not supported",
            code="not-supported",
            expression=[raw_name],
        )
    points = parse_points(raw_name, value)
    if len(plan.near_points) + len(points) > MAX_POINTS:
        raise _invalid(raw_name, f"a search may name at most {MAX_POINTS} points")
    plan.near_points.extend(points)
    return near_condition(points, plan.resource_type, param.name)


def check_sort(plan: Plan) -> None:
    """`_sort=near` orders by distance to the `near` points: without them it means nothing."""
    if any(key == SORT_KEY for key, _ in plan.sort) and not plan.near_points:
        raise InvalidRequest(
            "_sort=near needs a near parameter in the same search", expression=["_sort"]
        )


def sort_expression(plan: Plan) -> Subquery:
    return distance_order(plan.near_points, _param_name(plan))


def annotate_entries(plan: Plan, entries: list) -> None:
    """Put each matched resource's distance on its entry (`entry.search.extension`)."""
    if not plan.near_points:
        return
    matches = [e for e in entries if e.mode == "match"]
    found = positions_of([e.row.pk for e in matches], _param_name(plan))
    for entry in matches:
        if entry.row.pk in found:
            entry.extensions.append(distance_extension(plan.near_points, *found[entry.row.pk]))


def _param_name(plan: Plan) -> str:
    return positions.POSITION_PARAMS[plan.resource_type][0]
