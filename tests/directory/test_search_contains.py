"""`Location?contains=lat|lon` against a ray-casting oracle, over real HTTP; boundary checks.

Generated Locations carry `location-boundary-geojson` boundaries: squares, concave shapes
(U-shapes, stars), squares with holes, and MultiPolygons of disjoint parts, as bare geometries
or wrapped in a Feature or FeatureCollection, some spanning several latitude bands. The oracle
is an even-odd ray-casting test written here (the server uses GEOS), over random points and
points inside each shape's box. Shapes crossing the antimeridian are out of scope: RFC 7946
asks writers to cut them there, and the server reads coordinates literally.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import random
from urllib.parse import parse_qsl

import pytest
import requests

from directory.bulkload import bulk_load
from directory.models import BoundaryIndex, BoundaryShape, Resource
from directory.reindex import reindex
from directory.search import SearchRequest, search

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/fhir+json"
BOUNDARY = "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"
Ring = list[tuple[float, float]]  # (longitude, latitude), closed
Polygon = list[Ring]  # shell, then holes


# ---------------------------------------------------------------- the oracle


def in_ring(ring: Ring, lon: float, lat: float) -> bool:
    """Even-odd ray casting: a ray east from the point crosses the ring an odd number of times."""
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > lat) != (y2 > lat):
            crossing = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < crossing:
                inside = not inside
    return inside


def in_polygon(polygon: Polygon, lon: float, lat: float) -> bool:
    shell, *holes = polygon
    return in_ring(shell, lon, lat) and not any(in_ring(h, lon, lat) for h in holes)


def covered(polygons: list[Polygon], lat: float, lon: float) -> bool:
    return any(in_polygon(p, lon, lat) for p in polygons)


# ---------------------------------------------------------------- shapes


def closed(points: list[tuple[float, float]]) -> Ring:
    return [*points, points[0]]


def rect(x: float, y: float, w: float, h: float) -> Ring:
    return closed([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])


def u_shape(x: float, y: float, s: float) -> Polygon:
    a, b = s / 3, 2 * s / 3
    return [
        closed(
            [
                (x, y),
                (x + s, y),
                (x + s, y + s),
                (x + b, y + s),
                (x + b, y + a),
                (x + a, y + a),
                (x + a, y + s),
                (x, y + s),
            ]
        )
    ]


def star(rng: random.Random, x: float, y: float, s: float) -> Polygon:
    """Star-shaped about its centre, so simple whatever the radii."""
    count = rng.randint(5, 12)
    points = []
    for index in range(count):
        angle = 2 * math.pi * index / count
        radius = s / 2 * (1 if index % 2 else rng.uniform(0.25, 0.6))
        points.append((x + s / 2 + radius * math.cos(angle), y + s / 2 + radius * math.sin(angle)))
    return [closed(points)]


def holed(x: float, y: float, s: float) -> Polygon:
    q = s / 8
    return [
        rect(x, y, s, s),
        rect(x + q, y + q, 2 * q, 5 * q),
        rect(x + 5 * q, y + 2 * q, 2 * q, 2 * q),
    ]


def shapes(rng: random.Random) -> list[list[Polygon]]:
    """Each boundary: its polygons (one, or several for a MultiPolygon)."""
    found = []
    for index in range(32):
        size = rng.choice((0.3, 1.0, 2.5, 6.0))
        x, y = rng.uniform(-170, 170 - 2 * size), rng.uniform(-60, 60 - 2 * size)
        kind = index % 5
        if kind == 0:
            found.append([[rect(x, y, size, size * rng.uniform(0.5, 2))]])
        elif kind == 1:
            found.append([u_shape(x, y, size)])
        elif kind == 2:
            found.append([star(rng, x, y, size)])
        elif kind == 3:
            found.append([holed(x, y, size)])
        else:
            found.append([holed(x, y, size), star(rng, x + size * 1.1, y, size * 0.8)])
    # Overlapping boundaries: a point may lie in several.
    found.append([[rect(-10, -10, 30, 30)]])
    return found


def geojson(polygons: list[Polygon], wrapper: int) -> dict:
    coordinates = [[[list(p) for p in ring] for ring in polygon] for polygon in polygons]
    if len(polygons) == 1 and wrapper != 3:
        geometry: dict = {"type": "Polygon", "coordinates": coordinates[0]}
    else:
        geometry = {"type": "MultiPolygon", "coordinates": coordinates}
    if wrapper == 1:
        return {"type": "Feature", "properties": {}, "geometry": geometry}
    if wrapper == 2:
        return {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": geometry}],
        }
    return geometry


def attachment(document: object, content_type: str = "application/geo+json") -> dict:
    data = base64.b64encode(json.dumps(document).encode()).decode()
    return {"contentType": content_type, "data": data}


def location(lid: str, value: dict, nested: bool = False) -> dict:
    extension = (
        {"url": BOUNDARY, "extension": [{"url": "boundary", "valueAttachment": value}]}
        if nested  # NDH's expression reads this shape (a sub-extension's value)
        else {"url": BOUNDARY, "valueAttachment": value}
    )
    return {"resourceType": "Location", "id": lid, "name": lid, "extension": [extension]}


def points(rng: random.Random, boundaries: list[list[Polygon]]) -> list[tuple[float, float]]:
    found = [(rng.uniform(-62, 62), rng.uniform(-172, 172)) for _ in range(30)]
    for polygons in boundaries:
        shell = polygons[0][0]
        lons, lats = [p[0] for p in shell], [p[1] for p in shell]
        for _ in range(3):
            found.append((rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))))
    return [(round(lat, 6), round(lon, 6)) for lat, lon in found]


# ---------------------------------------------------------------- over HTTP


def store(base: str, headers: dict, resources: list[dict]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"Location/{r['id']}"}}
            for r in resources
        ],
    }
    answer = requests.post(f"{base}/", json=bundle, headers=headers, timeout=120)
    assert answer.status_code == 200, answer.text[:500]


def search_ids(base: str, headers: dict, params: list) -> set[str]:
    answer = requests.get(
        f"{base}/Location", params=[*params, ("_count", "200")], headers=headers, timeout=30
    )
    assert answer.status_code == 200, (params, answer.text[:300])
    return {e["resource"]["id"] for e in answer.json().get("entry", [])}


@pytest.fixture
def http(live_server, credentials, settings):
    settings.RATE_LIMIT_PER_MINUTE = 0  # a hundred searches in a few seconds, as one client
    headers = {**credentials.http, "Accept": JSON, "Content-Type": JSON}
    return f"{live_server.url}/fhir", headers


def test_contains_matches_the_ray_casting_oracle(http, monkeypatch):
    base, headers = http
    # Shapes are tested a few resources at a time: chunks of two make most points span several.
    monkeypatch.setattr("directory.search.contains.SHAPE_CHUNK", 2)
    rng = random.Random(9)
    boundaries = shapes(rng)
    resources = [
        location(f"area-{i}", attachment(geojson(b, i % 4)), nested=i % 7 == 6)
        for i, b in enumerate(boundaries)
    ]
    resources.append({"resourceType": "Location", "id": "no-boundary", "name": "x"})
    store(base, headers, resources)
    wrong, matched = [], 0
    for lat, lon in points(rng, boundaries):
        expected = {f"area-{i}" for i, b in enumerate(boundaries) if covered(b, lat, lon)}
        found = search_ids(base, headers, [("contains", f"{lat}|{lon}")])
        matched += len(expected)
        if found != expected:
            wrong.append(((lat, lon), sorted(expected - found), sorted(found - expected)))
    assert not wrong, wrong[:5]
    assert matched >= 60  # enough points fall inside shapes to judge anything


def test_alternatives_and_repeats(http):
    base, headers = http
    square = location("square", attachment(geojson([[rect(0, 0, 2, 2)]], 0)))
    ring = location("ring", attachment(geojson([holed(1, 1, 4)], 0)))
    store(base, headers, [square, ring])
    assert search_ids(base, headers, [("contains", "1.5|1.5")]) == {"square", "ring"}
    # (1.7, 1.7) lies in the ring's first hole (x 1.5-2, y 1.5-3.5).
    assert search_ids(base, headers, [("contains", "1.7|1.7")]) == {"square"}
    assert search_ids(base, headers, [("contains", "0.5|0.5,4|4")]) == {"square", "ring"}
    both = [("contains", "0.5|0.5"), ("contains", "1.2|1.2")]
    assert search_ids(base, headers, both) == {"square"}
    assert search_ids(base, headers, [("contains", "-1|-1")]) == set()


INVALID = [
    ({"contentType": "application/geo+json", "data": "not base64!"}, "base64"),
    (attachment({"type": "Point", "coordinates": [1, 2]}), "Polygon or MultiPolygon"),
    (attachment({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}), "end"),
    (attachment({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}), "four"),
    (
        attachment({"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}),
        "Self-intersection",
    ),
    (attachment({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [0, 1], [0, 0]]]}), "WGS84"),
    (attachment({"type": "Polygon", "coordinates": "x"}), "linear rings"),
    (
        attachment({"type": "Polygon", "coordinates": [rect(0, 0, 1, 1)]}, "text/plain"),
        "contentType",
    ),
    (
        {"contentType": "application/geo+json", "data": base64.b64encode(b"{").decode()},
        "not GeoJSON",
    ),
    (
        {"contentType": "application/geo+json", "data": base64.b64encode(b"[" * 100_000).decode()},
        "nested too deeply",
    ),
]


@pytest.mark.parametrize(("value", "reason"), INVALID, ids=[r for _, r in INVALID])
def test_invalid_boundaries_are_refused_on_write(http, value, reason):
    base, headers = http
    answer = requests.post(
        f"{base}/Location", json=location("x", value), headers=headers, timeout=10
    )
    assert answer.status_code == 422, answer.text[:300]
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert reason in outcome["issue"][0]["diagnostics"]
    # Base64 is checked by the structural validation first, which names the element.
    assert outcome["issue"][0]["expression"][0].startswith("Location.extension")


def test_vertex_limit(http, settings):
    base, headers = http
    settings.FHIR_BOUNDARY_MAX_VERTICES = 4
    body = location("x", attachment(geojson([[rect(0, 0, 1, 1)]], 0)))
    answer = requests.post(f"{base}/Location", json=body, headers=headers, timeout=10)
    assert answer.status_code == 422 and "at most 4" in answer.text
    settings.FHIR_BOUNDARY_MAX_VERTICES = 5
    answer = requests.post(f"{base}/Location", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text[:300]


def test_boundary_by_url_only_is_stored_unindexed(http):
    """The server never fetches an Attachment's url: such a boundary is kept, not searched."""
    base, headers = http
    body = location("x", {"contentType": "application/geo+json", "url": "https://example.org/b"})
    answer = requests.post(f"{base}/Location", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201
    assert search_ids(base, headers, [("contains", "0|0")]) == set()


@pytest.mark.parametrize(
    "query",
    [
        "contains=42",
        "contains=42|-71|5",
        "contains=abc|1",
        "contains=91|0",
        "contains=0|181",
        "contains=NaN|0",
        "contains:missing=true",
        "contains=" + ",".join(["1|1"] * 21),
    ],
)
def test_malformed_values_are_refused(http, query):
    base, headers = http
    answer = requests.get(f"{base}/Location?{query}", headers=headers, timeout=10)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_capability_statement_advertises_both(http):
    base, headers = http
    statement = requests.get(f"{base}/metadata", headers=headers, timeout=10).json()
    params = {
        (r["type"], p["name"]): p["type"]
        for r in statement["rest"][0]["resource"]
        for p in r.get("searchParam", [])
    }
    assert params[("Location", "contains")] == "special"
    assert params[("HealthcareService", "new-patient-and-from-network")] == "composite"


def find(query: str) -> set[str]:
    pairs = [*parse_qsl(query), ("_count", "200")]
    result = search(SearchRequest("Location", pairs, strict=True))
    return {e.content["id"] for e in result.entries if e.mode == "match"}


def test_bulk_load_and_reindex_index_boundaries():
    """Bulk loading (COPY on PostgreSQL) files boundaries like a write; a boundary stored before
    the check that reindexing finds invalid is left out of the index, not a failed reindex."""
    square = location("bulk", attachment(geojson([[rect(10, 10, 3, 3)]], 1)))
    bulk_load([("Location", square)])
    assert find("contains=11|11") == {"bulk"}
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    Resource.objects.filter(logical_id="bulk").update(
        content=json.dumps(location("bulk", attachment(bowtie)))
    )
    [progress] = reindex("Location")
    assert progress.failed == [] and progress.done == 1
    assert find("contains=11|11") == set()
    assert not BoundaryIndex.objects.exists() and not BoundaryShape.objects.exists()
