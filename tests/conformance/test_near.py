"""`Location?near=lat|lon|distance|unit` against haversine distances over Location.position."""

from __future__ import annotations

import math

import pytest

from . import cases, oracle
from .conftest import STRICT, describe

pytestmark = pytest.mark.django_db

DISTANCE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/location-distance"


@pytest.mark.parametrize("case", cases.near_cases(), ids=lambda c: c.name)
def test_near(server, case):
    result = server.search(case.base, case.query, **STRICT)
    assert result.status == 200 and result.matches == case.expected, describe(result, case)


def test_near_reports_each_distance(server):
    """Each match carries the `location-distance` extension, in a unit it names, and the
    distance is the haversine one (within 0.5%, room for the Earth radius a server uses)."""
    lat, lon = cases.NEAR_CENTRES[0]
    result = server.search("Location", f"near={lat}|{lon}|200|km", **STRICT)
    assert result.status == 200, describe(result, None)
    truth = oracle.distances_km(lat, lon)
    matched = [e for e in result.entries if e.get("search", {}).get("mode") == "match"]
    assert matched
    for entry in matched:
        found = [x for x in entry["search"].get("extension", []) if x["url"] == DISTANCE_EXTENSION]
        assert len(found) == 1, f"{entry['resource']['id']}: no location-distance extension"
        distance = found[0]["valueDistance"]
        km = distance["value"] * oracle.UNIT_KM[distance["code"]]
        expected = truth[entry["resource"]["id"]]
        assert math.isclose(km, expected, rel_tol=0.005, abs_tol=0.01), (km, expected)
