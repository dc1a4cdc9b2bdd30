"""`near` over HTTP: the distance extension in a valid Bundle, page links, 400 for bad values."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class

from tests.factories import LocationFactory

from .conftest import outcome_issue

pytestmark = pytest.mark.django_db

DISTANCE = "http://hl7.org/fhir/StructureDefinition/location-distance"
# Along a meridian a degree of latitude is R * pi / 180 km: an oracle that needs no formula.
KM_PER_DEGREE = 6371.0088 * math.pi / 180


@pytest.fixture
def meridian():
    """Locations 0, 0.1, ... 0.9 degrees north of (40, -75), stored in shuffled order."""
    for tenth in (3, 7, 0, 9, 1, 5, 8, 2, 6, 4):
        LocationFactory.create(
            id=f"m{tenth}", position={"latitude": 40 + tenth / 10, "longitude": -75}
        )


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_bundle_carries_distances_and_validates(api, meridian):
    response = api.get("/fhir/Location", {"near": "40|-75|60|km", "_sort": "near"})
    assert response.status_code == 200
    bundle = response.json()
    get_fhir_model_class("Bundle").model_validate(bundle)
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert ids == [f"m{t}" for t in range(6)]  # 0.5 degrees is 55.6 km, 0.6 is 66.7 km
    for tenth, entry in enumerate(bundle["entry"]):
        [extension] = entry["search"]["extension"]
        assert extension["url"] == DISTANCE
        value = extension["valueDistance"]
        assert value["code"] == "km" and value["system"] == "http://unitsofmeasure.org"
        assert value["value"] == pytest.approx(tenth / 10 * KM_PER_DEGREE, abs=0.001)


def test_pages_keep_distance_order_and_extensions(api, meridian):
    url = "/fhir/Location?near=40|-75|100|[mi_i]&_sort=near&_count=3"
    seen = []
    while url:
        bundle = api.get(url).json()
        for entry in bundle["entry"]:
            seen.append(entry["resource"]["id"])
            miles = entry["search"]["extension"][0]["valueDistance"]["value"]
            assert miles == pytest.approx(int(entry["resource"]["id"][1:]) / 10 * 69.09, rel=1e-3)
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = relative(nxt[0]) if nxt else None
    assert seen == [f"m{t}" for t in range(10)]


@pytest.mark.parametrize("value", ["91|0", "0|0|-5", "0|0|5|mi", "0", "0|x"])
def test_bad_near_is_400_naming_the_parameter(api, meridian, value):
    response = api.get("/fhir/Location", {"near": value})
    assert response.status_code == 400
    issue = outcome_issue(response)
    assert issue["expression"] == ["near"]


def test_sort_near_without_near_is_400(api, meridian):
    response = api.get("/fhir/Location", {"_sort": "near"})
    assert response.status_code == 400
    assert outcome_issue(response)["expression"] == ["_sort"]
