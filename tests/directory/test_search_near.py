"""`Location?near=`: exact id sets, order and reported distances against an independent oracle.

The oracle measures the great-circle distance as the chord between unit vectors (not the
haversine formula the server uses) on the same sphere, so a wrong box, a wrong formula in SQL or
a wrong unit factor shows up as a different id set, order or distance.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from directory import bulkload, storage
from directory.errors import InvalidRequest
from directory.models import PositionIndex, Resource
from directory.positions import EARTH_RADIUS_KM
from directory.search import SearchRequest, search
from directory.search.near import DISTANCE_EXTENSION, near_condition, parse_points

pytestmark = pytest.mark.django_db

# The positions of the Plan-Net 1.2.0 example Locations (package/example/Location-*.json; CC0).
PLAN_NET = {
    "CancerClinicLoc": (15, 3),
    "HansSoloClinic": (15, 3),
    "HospLoc1": (15, 3),
    "HospLoc2": (15, 3),
    "PharmLoc1": (15, 3),
    "PharmLoc2": (18, 9),
    "PharmLoc3": (12, 7),
    "PharmLoc4": (16, 5),
}
# Places chosen for the geometry they test: a city cluster, both sides of the antimeridian,
# both poles, the equator and prime meridian.
PLACES = {
    "cambridge": (42.3736, -71.1097),
    "boston": (42.3601, -71.0589),
    "somerville": (42.3876, -71.0995),
    "worcester": (42.2626, -71.8023),
    "providence": (41.824, -71.4128),
    "nyc": (40.7128, -74.006),
    "fiji-west": (-17.7134, 178.065),
    "fiji-east": (-16.5, -179.9),
    "taveuni": (-16.85, 179.99),
    "samoa": (-13.759, -172.1046),
    "north-pole-0": (89.9, 0.0),
    "north-pole-180": (89.9, 180.0),
    "north-pole-90": (89.5, 90.0),
    "alert": (82.5018, -62.3481),
    "south-pole": (-89.95, 45.0),
    "mcmurdo": (-77.8419, 166.6863),
    "null-island": (0.0, 0.0),
    "gulf-east": (0.3, 0.3),
    "accra": (5.6037, -0.187),
}
KM_PER = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344, "[mi_us]": 1609.3472186944373 / 1000}
KM_PER["[nmi_i]"] = 1.852


def _unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lmb = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lmb), math.cos(phi) * math.sin(lmb), math.sin(phi))


def oracle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    chord = math.dist(_unit_vector(*a), _unit_vector(*b))
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, chord / 2))


@pytest.fixture
def located():
    """Every fixture Location stored, plus one without a position; id -> (lat, lon)."""
    known = {**PLAN_NET, **PLACES}
    for logical_id, (lat, lon) in known.items():
        put(logical_id, lat, lon)
    storage.update("Location", "nowhere", {"resourceType": "Location", "id": "nowhere"})
    return known


def put(logical_id: str, lat: float, lon: float):
    content = {"resourceType": "Location", "id": logical_id, "name": logical_id}
    content["position"] = {"latitude": lat, "longitude": lon}
    storage.update("Location", logical_id, content)


def run(query: list[tuple[str, str]], rtype: str = "Location"):
    return search(SearchRequest(rtype, [*query, ("_count", "500")], strict=True))


def found(value: str) -> set[str]:
    return {e.content["id"] for e in run([("near", value)]).entries if e.mode == "match"}


def expected(known: dict, lat: float, lon: float, km: float) -> set[str]:
    return {i for i, where in known.items() if oracle_km((lat, lon), where) <= km}


def clear_of_edges(known: dict, lat: float, lon: float, km: float) -> bool:
    """No place within a metre of the circle (float rounding would decide such a case), except
    places exactly at the centre, which are within any distance."""
    distances = [oracle_km((lat, lon), where) for where in known.values()]
    return all(d == 0 or abs(d - km) > 0.001 for d in distances)


# ---------------------------------------------------------------- id sets


CENTRES = [
    *PLACES.values(),
    (15, 3),
    (90, 0),
    (-90, 0),
    (0, 180),
    (0, -180),
    (-17, 180),
    (89.99, -135),
]
RADII_KM = [0, 1, 10, 50, 120, 300, 1000, 3000, 8000, 15000, 20100]


@pytest.mark.parametrize("km", RADII_KM)
def test_id_sets_match_the_oracle_around_every_centre(located, km):
    checked = 0
    for lat, lon in CENTRES:
        if not clear_of_edges(located, lat, lon, km):
            continue
        assert found(f"{lat}|{lon}|{km}|km") == expected(located, lat, lon, km), (lat, lon, km)
        checked += 1
    assert checked >= len(CENTRES) - 2


def test_random_circles_match_the_oracle(located):
    rng = random.Random(9)
    checked = 0
    while checked < 40:
        lat, lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
        km = rng.choice([1, 100, 1000, 5000]) * rng.uniform(0.5, 3)
        if clear_of_edges(located, lat, lon, km):
            assert found(f"{lat:.5f}|{lon:.5f}|{km}") == expected(located, lat, lon, km)
            checked += 1


def test_circle_across_the_antimeridian_finds_both_sides(located):
    hits = found("-17|180|300|km")
    assert {"fiji-west", "fiji-east", "taveuni"} <= hits
    assert hits == expected(located, -17, 180, 300)


def test_circle_holding_a_pole_finds_every_longitude(located):
    assert found("89|45|150|km") == {"north-pole-0", "north-pole-180", "north-pole-90"}
    assert found("-90|0|20|km") == {"south-pole"}


def test_plan_net_example_positions(located):
    assert found("15|3|1|km") == {i for i, p in PLAN_NET.items() if p == (15, 3)}
    assert found("15|3|400|km") == expected(located, 15, 3, 400)
    assert "PharmLoc4" in found("15|3|400|km") and "PharmLoc2" not in found("15|3|400|km")


def test_comma_separated_points_are_alternatives(located):
    hits = found("42.3736|-71.1097|5|km,-17|180|300|km")
    assert hits == expected(located, 42.3736, -71.1097, 5) | expected(located, -17, 180, 300)


def test_repeated_near_parameters_must_all_hold(located):
    rows = run([("near", "42.3736|-71.1097|100"), ("near", "40.7128|-74.006|250")]).entries
    both = expected(located, 42.3736, -71.1097, 100) & expected(located, 40.7128, -74.006, 250)
    assert {e.content["id"] for e in rows} == both == {"providence"}


def test_near_combines_with_other_filters(located):
    rows = run([("near", "42.37|-71.1|10"), ("name", "boston")]).entries
    assert [e.content["id"] for e in rows] == ["boston"]


def test_default_distance_is_the_setting(located, settings):
    settings.FHIR_NEAR_DEFAULT_DISTANCE_KM = 10
    assert found("42.3736|-71.1097") == expected(located, 42.3736, -71.1097, 10)
    settings.FHIR_NEAR_DEFAULT_DISTANCE_KM = 100
    assert found("42.3736|-71.1097||km") == expected(located, 42.3736, -71.1097, 100)


def test_default_distance_is_50_km(located):
    assert found("42.3736|-71.1097") == expected(located, 42.3736, -71.1097, 50)


# ---------------------------------------------------------------- units


@pytest.mark.parametrize("unit", sorted(KM_PER))
def test_units_convert_to_the_same_circle(located, unit):
    # Cambridge to Worcester is about 58.3 km: 300 m more reaches it, 300 m less does not.
    apart = oracle_km(PLACES["cambridge"], PLACES["worcester"])
    for km, inside in ((apart + 0.3, True), (apart - 0.3, False)):
        amount = km / KM_PER[unit]
        hits = found(f"42.3736|-71.1097|{amount!r}|{unit}")
        assert ("worcester" in hits) is inside, (unit, amount)


def test_distance_above_half_the_globe_is_everything(located):
    assert found("0|0|100000|km") == set(located)


# ---------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    "value",
    [
        "42.37",
        "42.37|-71.1|1|km|extra",
        "91|0",
        "-90.5|0",
        "0|180.01",
        "0|-181",
        "0|0|-1",
        "0|0|1|mi",
        "0|0|1|KM",
        "0|0|1|furlong",
        "abc|0",
        "0|nan",
        "0|inf",
        "0|0|Infinity",
        "0|0x10",
        "0|0|1e999",
        " 1|2",
        "|0",
        "1_0|2",  # Python's float() reads these three; FHIR's decimal does not
        "\uff11|2",
        "1|2|\u0661",
        "1|2|3|km|" + "x" * 5000,
    ],
)
def test_bad_values_are_refused_naming_the_parameter(located, value):
    with pytest.raises(InvalidRequest) as caught:
        run([("near", value)])
    assert caught.value.issues()[0]["expression"] == ["near"]


def test_near_takes_no_modifier(located):
    with pytest.raises(InvalidRequest):
        run([("near:missing", "true")])


def test_near_is_only_a_location_parameter(located):
    with pytest.raises(InvalidRequest):
        run([("near", "0|0|1")], rtype="Organization")


def test_sort_by_near_needs_near(located):
    with pytest.raises(InvalidRequest) as caught:
        run([("_sort", "near")])
    assert caught.value.issues()[0]["expression"] == ["_sort"]


# ---------------------------------------------------------------- order and distances


def by_distance(known: dict, lat: float, lon: float, km: float) -> list[str]:
    inside = expected(known, lat, lon, km)
    # Ties (the Plan-Net examples share a position) keep insertion order: the fixture's order.
    order = list(known)
    return sorted(inside, key=lambda i: (round(oracle_km((lat, lon), known[i]), 6), order.index(i)))


@pytest.mark.parametrize("centre", [(42.3736, -71.1097), (15, 3), (-17, 180), (89, 45)])
def test_sort_near_orders_by_distance_then_insertion(located, centre):
    lat, lon = centre
    rows = run([("near", f"{lat}|{lon}|3000"), ("_sort", "near")]).entries
    assert [e.content["id"] for e in rows] == by_distance(located, lat, lon, 3000)
    descending = run([("near", f"{lat}|{lon}|3000"), ("_sort", "-near")]).entries
    distances = [oracle_km(centre, located[e.content["id"]]) for e in descending]
    assert distances == sorted(distances, reverse=True)


def test_sort_near_may_come_before_near(located):
    rows = run([("_sort", "near"), ("near", "42.3736|-71.1097|100")]).entries
    assert [e.content["id"] for e in rows] == by_distance(located, 42.3736, -71.1097, 100)


def test_sort_near_with_other_keys(located):
    rows = run([("near", "15|3|1000"), ("_sort", "near,-_id")]).entries
    tied = [e.content["id"] for e in rows[:5]]
    assert tied == sorted(tied, reverse=True) and set(tied) == {
        i for i, p in PLAN_NET.items() if p == (15, 3)
    }


@pytest.mark.parametrize("unit", sorted(KM_PER))
def test_each_match_carries_its_distance(located, unit):
    lat, lon = -17.0, 180.0
    rows = run([("near", f"{lat}|{lon}|{600 / KM_PER[unit]!r}|{unit}")]).entries
    assert rows
    for entry in rows:
        [extension] = entry.extensions
        assert extension["url"] == DISTANCE_EXTENSION
        distance = extension["valueDistance"]
        assert distance["system"] == "http://unitsofmeasure.org" and distance["code"] == unit
        true_km = oracle_km((lat, lon), located[entry.content["id"]])
        assert distance["value"] == pytest.approx(true_km / KM_PER[unit], abs=0.0011)


def test_distance_is_to_the_closest_point_in_the_first_points_unit(located):
    rows = run([("near", "42.3736|-71.1097|10|[mi_i],-17|180|300|km")]).entries
    for entry in rows:
        where = located[entry.content["id"]]
        km = min(oracle_km((42.3736, -71.1097), where), oracle_km((-17, 180), where))
        value = entry.extensions[0]["valueDistance"]
        assert value["code"] == "[mi_i]"
        assert value["value"] == pytest.approx(km / 1.609344, abs=0.0011)


def test_searches_without_near_carry_no_distance(located):
    assert all(not e.extensions for e in run([("name", "boston")]).entries)


def test_pages_of_a_near_sort_follow_the_distance_order(located):
    want = by_distance(located, 42.3736, -71.1097, 20000)
    params = [("near", "42.3736|-71.1097|20000"), ("_sort", "near"), ("_count", "4")]
    result, seen = search(SearchRequest("Location", params, strict=True)), []
    while True:
        seen += [e.content["id"] for e in result.entries]
        assert all(e.extensions for e in result.entries)
        if result.next_params is None:
            break
        result = search(SearchRequest("Location", result.next_params, strict=True))
    assert seen == want and len(seen) > 20


def test_total_counts_in_the_database(located):
    result = search(
        SearchRequest("Location", [("near", "15|3|400"), ("_total", "accurate"), ("_count", "1")])
    )
    assert result.total == len(expected(located, 15, 3, 400))


# ---------------------------------------------------------------- index upkeep and reuse


def test_update_moves_and_removing_position_drops_the_row(located):
    put("boston", -17.5, 179.5)
    assert "boston" not in found("42.3736|-71.1097|20")
    assert "boston" in found("-17|180|100")
    content = json.loads(storage.read("Location", "boston").content)
    del content["position"]
    storage.update("Location", "boston", content)
    assert "boston" not in found("0|0|100000")
    assert not PositionIndex.objects.filter(resource__logical_id="boston").exists()


def test_delete_drops_the_location(located):
    storage.delete("Location", "cambridge")
    assert "cambridge" not in found("42.3736|-71.1097|20")
    assert PositionIndex.objects.filter(resource__logical_id="cambridge").count() == 0


def test_bulk_load_indexes_positions(db):
    bulkload.bulk_load(
        [
            ("Location", {"resourceType": "Location", "id": f"b{i}", "position": where})
            for i, where in enumerate(
                [{"latitude": 10, "longitude": 10}, {"latitude": 10.01, "longitude": 10.01}]
            )
        ]
    )
    assert found("10|10|5") == {"b0", "b1"}


def test_near_condition_is_a_plain_q_over_resource(located):
    points = parse_points("location.near", "15|3|400")
    rows = Resource.objects.filter(resource_type="Location").filter(near_condition(points))
    assert set(rows.values_list("logical_id", flat=True)) == expected(located, 15, 3, 400)


def test_migration_indexes_locations_stored_before_it(located):
    from importlib import import_module

    from django.apps import apps

    PositionIndex.objects.all().delete()
    assert found("15|3|400") == set()
    import_module("directory.migrations.0012_position_index").index_existing_positions(apps, None)
    assert found("15|3|400") == expected(located, 15, 3, 400)
    assert PositionIndex.objects.count() == len(located)


def test_sort_near_over_several_points_orders_by_the_closest(located):
    boston, fiji = (42.3736, -71.1097), (-17.0, 180.0)
    rows = run([("near", "42.3736|-71.1097|400,-17|180|800"), ("_sort", "near")]).entries
    ids = [e.content["id"] for e in rows]
    assert set(ids) == expected(located, *boston, 400) | expected(located, *fiji, 800)
    closest = [min(oracle_km(boston, located[i]), oracle_km(fiji, located[i])) for i in ids]
    assert closest == sorted(closest)


def test_points_per_search_are_capped(located):
    assert found(",".join(["0|0|1"] * 20)) == {"null-island"}
    with pytest.raises(InvalidRequest):
        run([("near", ",".join(["0|0|1"] * 11)), ("near", ",".join(["0|0|1"] * 10))])
