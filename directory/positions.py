"""Geographic positions: what the `near` index holds, and great-circle geometry on WGS84 degrees.

Distances are great-circle distances on a sphere of the Earth's mean radius (IUGG, 6371.0088 km)
by the haversine formula: within 0.5% of the WGS84 ellipsoid everywhere, which FHIR allows
("servers may search using various techniques that might have differing accuracies").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeGuard

EARTH_RADIUS_KM = 6371.0088
# The farthest two points can be apart on the sphere: half its circumference.
MAX_DISTANCE_KM = math.pi * EARTH_RADIUS_KM

# Which search parameter reads which element as a position, per resource type: R4 `near`
# (type special, expression `Location.position`) is the only position parameter FHIR defines.
POSITION_PARAMS: dict[str, tuple[str, str]] = {"Location": ("near", "position")}


@dataclass(frozen=True)
class Box:
    """Latitude range and longitude ranges (one, or two across the antimeridian), in degrees."""

    min_lat: float
    max_lat: float
    lon_ranges: tuple[tuple[float, float], ...] | None  # None: every longitude


def extract_positions(resource_type: str, content: dict) -> list[tuple[str, int, float, float]]:
    """(param, band, latitude, longitude) rows of a resource; none for absent or bad positions."""
    declared = POSITION_PARAMS.get(resource_type)
    if declared is None:
        return []
    param, element = declared
    row = position_row(content.get(element))
    return [(param, *row)] if row else []


def position_row(position: object) -> tuple[int, float, float] | None:
    """(band, latitude, longitude) of a Location.position element; None when absent or bad."""
    if not isinstance(position, dict):
        return None
    latitude, longitude = position.get("latitude"), position.get("longitude")
    if not (_finite(latitude) and _finite(longitude)):
        return None
    latitude, longitude = float(latitude), float(longitude)
    if abs(latitude) > 90 or abs(longitude) > 180:
        return None  # not a WGS84 position: no distance to it means anything
    return band_of(latitude), latitude, longitude


def band_of(latitude: float) -> int:
    """The 1-degree latitude band a position is indexed under."""
    return math.floor(latitude)


def _finite(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def haversine_term(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """hav(central angle) between two points: 0 for the same point, 1 for antipodes."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    return math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    term = min(1.0, max(0.0, haversine_term(lat1, lon1, lat2, lon2)))
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(term))


def haversine_limit(distance: float) -> float:
    """The haversine term of a distance in km: a point is within `distance` iff its term is <= this.

    Comparing terms, not distances, keeps asin and sqrt out of SQL (and out of their domain edges).
    """
    if distance >= MAX_DISTANCE_KM:
        return 1.0
    return math.sin(distance / (2 * EARTH_RADIUS_KM)) ** 2


# Bounding boxes are widened by this many degrees (about a centimetre) so that rounding at the
# box edge never drops a point the exact distance test would keep.
_BOX_MARGIN = 1e-7


def bounding_box(latitude: float, longitude: float, distance: float) -> Box:
    """The smallest latitude/longitude box holding every point within `distance` km."""
    angle = distance / EARTH_RADIUS_KM  # radians of arc
    dlat = math.degrees(angle) + _BOX_MARGIN
    min_lat, max_lat = latitude - dlat, latitude + dlat
    if min_lat <= -90 or max_lat >= 90:
        # The circle holds a pole: every longitude is within reach near it.
        return Box(max(min_lat, -90.0), min(max_lat, 90.0), None)
    # Widest longitude reach, at the latitude where the circle touches its meridians (the circle
    # holds no pole here, so the ratio is below 1).
    dlon = math.degrees(math.asin(math.sin(angle) / math.cos(math.radians(latitude))))
    dlon += _BOX_MARGIN
    west, east = longitude - dlon, longitude + dlon
    if dlon >= 180:
        return Box(min_lat, max_lat, None)
    if west < -180:
        return Box(min_lat, max_lat, ((west + 360, 180.0), (-180.0, east)))
    if east > 180:
        return Box(min_lat, max_lat, ((west, 180.0), (-180.0, east - 360)))
    return Box(min_lat, max_lat, ((west, east),))
