"""Location boundaries: the `location-boundary-geojson` extension read, checked and tested.

The extension (FHIR extensions pack, R4 and R5) is a simple extension whose valueAttachment
carries GeoJSON (RFC 7946, `application/geo+json`) base64-encoded in `data`. A boundary is a
Polygon or MultiPolygon (holes and disjoint parts allowed), bare or wrapped in a Feature,
FeatureCollection or GeometryCollection. Coordinates are `[longitude, latitude]` in WGS84 degrees
and taken literally: a ring is not cut at the antimeridian (RFC 7946 asks writers to cut it), so a
shape crossing it must be sent as the two parts either side.

Geometry is shapely's (GEOS, the engine PostGIS uses): OGC validity (rings closed and simple,
holes inside their shell, no self-intersection) on write, and the point-in-polygon test of the
`contains` search, where a point on an edge counts as contained.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import shapely
from django.conf import settings
from shapely.geometry import Polygon

BOUNDARY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"
# Which search parameter reads boundaries, per resource type (NDH and R5 Location `contains`).
BOUNDARY_PARAMS: dict[str, str] = {"Location": "contains"}
GEOJSON_TYPES = ("application/geo+json", "application/json")
_WRAPPERS = ("Feature", "FeatureCollection", "GeometryCollection")

Ring = list[tuple[float, float]]  # (longitude, latitude) pairs, closed


class BoundaryError(ValueError):
    """A boundary that is not a usable GeoJSON Polygon or MultiPolygon; the message says why."""


@dataclass(frozen=True)
class Shape:
    """One polygon of a boundary and its bounding box."""

    polygon: Polygon
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def to_text(self) -> str:
        """The stored form: hex WKB, which GEOS reads back without Python per coordinate."""
        return str(shapely.to_wkb(self.polygon, hex=True))


# ---------------------------------------------------------------- reading a boundary


def boundary_shapes(attachment: Any) -> list[Shape]:
    """The polygons of a boundary Attachment; BoundaryError when it is not a valid boundary.

    An Attachment with no `data` (only a `url`) is left alone: the server does not fetch it.
    """
    if not isinstance(attachment, dict) or attachment.get("data") is None:
        return []
    content_type = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
    if content_type and content_type not in GEOJSON_TYPES:
        raise BoundaryError(f"contentType must be application/geo+json, not '{content_type[:60]}'")
    document = _decode(attachment["data"])
    polygons = list(_polygons(document, depth=0))
    if not polygons:
        raise BoundaryError("the GeoJSON holds no Polygon or MultiPolygon")
    vertices = sum(len(ring) for rings in polygons for ring in rings)
    if vertices > settings.FHIR_BOUNDARY_MAX_VERTICES:
        raise BoundaryError(
            f"the boundary has {vertices} vertices; at most "
            f"{settings.FHIR_BOUNDARY_MAX_VERTICES} are accepted"
        )
    shapes = [_shape(rings) for rings in polygons]
    _check_valid(shapes)
    return shapes


def _decode(data: Any) -> Any:
    if not isinstance(data, str):
        raise BoundaryError("data must be base64 text")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BoundaryError("data is not valid base64") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BoundaryError("data is not GeoJSON: not UTF-8 JSON") from None
    except RecursionError:  # inside base64, the request's nesting check never saw it
        raise BoundaryError("data is not GeoJSON: nested too deeply") from None


def _polygons(node: Any, depth: int) -> Iterator[list[Ring]]:
    """The rings of every Polygon in a GeoJSON object (MultiPolygon parts, wrapped geometries)."""
    kind = node.get("type") if isinstance(node, dict) else None
    if depth > 4 or not isinstance(kind, str):
        raise BoundaryError("the GeoJSON is not a geometry, Feature or FeatureCollection")
    if kind == "Polygon":
        yield _rings(node.get("coordinates"))
    elif kind == "MultiPolygon":
        parts = node.get("coordinates")
        if not isinstance(parts, list) or not parts:
            raise BoundaryError("MultiPolygon coordinates must be a non-empty array of polygons")
        for part in parts:
            yield _rings(part)
    elif kind in _WRAPPERS:
        children = {
            "Feature": [node.get("geometry")],
            "FeatureCollection": node.get("features"),
            "GeometryCollection": node.get("geometries"),
        }[kind]
        if not isinstance(children, list):
            raise BoundaryError(f"{kind} has no geometry")
        for child in children:
            if child is not None:  # a Feature without geometry is allowed by RFC 7946
                yield from _polygons(child, depth + 1)
    else:
        raise BoundaryError(f"a boundary must be a Polygon or MultiPolygon, not '{kind[:40]}'")


def _rings(coordinates: Any) -> list[Ring]:
    if not isinstance(coordinates, list) or not coordinates:
        raise BoundaryError("Polygon coordinates must be a non-empty array of linear rings")
    return [_ring(ring) for ring in coordinates]


def _ring(positions: Any) -> Ring:
    """A linear ring (RFC 7946 3.1.6): four or more positions, the last equal to the first."""
    if not isinstance(positions, list) or len(positions) < 4:
        raise BoundaryError("a linear ring needs at least four positions")
    ring = [_position(p) for p in positions]
    if ring[0] != ring[-1]:
        raise BoundaryError("a linear ring must end where it starts")
    return ring


def _position(position: Any) -> tuple[float, float]:
    if not isinstance(position, list) or len(position) < 2:
        raise BoundaryError("a position must be [longitude, latitude]")
    lon, lat = position[0], position[1]
    for value in (lon, lat):
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value):
            raise BoundaryError("a position's coordinates must be finite numbers")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BoundaryError(f"position [{lon}, {lat}] is outside WGS84 longitude/latitude")
    return float(lon), float(lat)


def _shape(rings: list[Ring]) -> Shape:
    lons = [p[0] for p in rings[0]]
    lats = [p[1] for p in rings[0]]
    polygon = Polygon(rings[0], rings[1:])
    return Shape(polygon, min(lats), max(lats), min(lons), max(lons))


def _check_valid(shapes: list[Shape]) -> None:
    for index, shape in enumerate(shapes):
        if not shapely.is_valid(shape.polygon):
            reason = shapely.is_valid_reason(shape.polygon)
            where = f"polygon {index + 1}: " if len(shapes) > 1 else ""
            raise BoundaryError(f"{where}not a valid polygon ({reason[:120]})")


# ---------------------------------------------------------------- resources


def boundary_issues(resource_type: str, attachments: Iterable[Any]) -> list[dict]:
    """OperationOutcome issues for boundaries that are not valid GeoJSON polygons."""
    where = f"{resource_type}.extension('{BOUNDARY_EXTENSION}')"
    issues = []
    for attachment in attachments:
        try:
            boundary_shapes(attachment)
        except BoundaryError as exc:
            issues.append(
                {
                    "severity": "error",
                    "code": "value",
                    "diagnostics": f"{where}: the boundary is not valid GeoJSON: {exc}",
                    "expression": [where],
                }
            )
    return issues


# ---------------------------------------------------------------- point in polygon


def covering(texts: list[str], latitude: float, longitude: float) -> list[bool]:
    """Which stored shapes (`Shape.to_text`) hold the point, edges included: one GEOS call."""
    if not texts:
        return []
    polygons = shapely.from_wkb(texts)
    return [bool(hit) for hit in shapely.intersects_xy(polygons, longitude, latitude)]
