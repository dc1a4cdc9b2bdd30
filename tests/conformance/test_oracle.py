"""The oracle itself, on facts that can be checked by hand: a harness that judges the server
must first be shown to judge correctly. No database needed."""

from __future__ import annotations

import math

import pytest

from . import cases, oracle, package
from .conftest import dependency_order, transaction_bundle


def node(kind: str, value) -> oracle.Node:
    return oracle.Node(kind, value)


def test_every_expression_selects_only_types_the_oracle_understands():
    for param in package.PLAN_NET_PARAMS + package.CORE_PARAMS:
        for base in param["base"]:
            for resource in package.of_type(base):
                for found in oracle.selected(param, resource):
                    if param["type"] == "string":
                        oracle.string_parts(found)
                    elif param["type"] == "token":
                        oracle.tokens(found)
                    elif param["type"] == "reference":
                        oracle.referenced_keys(found)
                    elif param["type"] == "date":
                        oracle.date_ranges(found)


def test_every_plan_net_parameter_selects_something_in_the_data():
    # Otherwise its only cases would be misses, and a server ignoring it could not fail.
    empty = [
        p["id"]
        for p in package.PLAN_NET_PARAMS
        if not any(oracle.selected(p, r) for b in p["base"] for r in package.of_type(b))
    ]
    assert empty == []


def test_every_parameter_has_a_value_matching_something_and_one_matching_nothing():
    by_param: dict[str, list[cases.Case]] = {}
    for case in cases.parameter_cases():
        by_param.setdefault(case.name.split(":")[0], []).append(case)
    assert set(by_param) == {p["id"] for p in package.PLAN_NET_PARAMS}
    for name, found in by_param.items():
        assert any(c.expected for c in found), name
        assert any(not c.expected for c in found), name


def test_every_declared_chain_has_a_case():
    names = {c.name.split("=")[0] for c in cases.chain_cases()}
    for param in package.PLAN_NET_PARAMS:
        for code in param.get("chain") or []:
            assert f"{param['id']}:{param['code']}.{code}" in names


def test_expressions_are_typed_through_unions():
    # fhirpathpy loses the type of what a union selects; each alternative is evaluated alone.
    assert oracle._branches("Organization.name | Organization.alias") == [
        "Organization.name",
        "Organization.alias",
    ]
    assert oracle._branches("a.where(b = 'x|y') | c") == ["a.where(b = 'x|y')", "c"]


def test_string_matching_is_prefix_case_and_accent_blind():
    parts = oracle.string_parts(node("HumanName", {"family": "Núñez", "given": ["José"]}))
    assert oracle.string_matches(parts, "nunez")
    assert oracle.string_matches(parts, "JOS")
    assert not oracle.string_matches(parts, "unez")
    assert oracle.string_matches(parts, "unez", "contains")
    assert oracle.string_matches(parts, "Núñez", "exact")
    assert not oracle.string_matches(parts, "Nunez", "exact")


def test_token_matching_forms():
    found = oracle.tokens(
        node("CodeableConcept", {"coding": [{"system": "http://s", "code": "a"}, {"code": "b"}]})
    )
    assert oracle.token_matches(found, "a")
    assert oracle.token_matches(found, "http://s|a")
    assert oracle.token_matches(found, "http://s|")
    assert not oracle.token_matches(found, "|a")
    assert oracle.token_matches(found, "|b")
    assert not oracle.token_matches(found, "http://s|b")
    identifier = oracle.tokens(node("Identifier", {"system": "http://npi", "value": "123"}))
    assert oracle.token_matches(identifier, "http://npi|123")
    assert oracle.tokens(node("boolean", False)) == [oracle.Token(None, "false", False)]


def test_extensions_stand_for_their_values():
    extension = {"url": "x", "valueReference": {"reference": "Organization/Acme"}}
    assert oracle.unwrapped(node("Extension", extension)) == [
        node("Reference", {"reference": "Organization/Acme"})
    ]
    assert oracle.unwrapped(node("Extension", {"url": "x", "valueCode": "c"}))[0].type == "code"


def test_references_resolve_only_to_stored_resources():
    assert oracle.referenced_keys(node("Reference", {"reference": "Organization/Acme"})) == [
        "Organization/Acme"
    ]
    assert oracle.referenced_keys(node("Reference", {"reference": "Organization/nope"})) == []
    assert oracle.referenced_keys(node("Reference", {"display": "no reference"})) == []
    keys = ["Organization/Acme"]
    assert oracle.reference_matches(keys, "Acme")
    assert oracle.reference_matches(keys, "Acme", "Organization")
    assert not oracle.reference_matches(keys, "Acme", "Location")
    assert not oracle.reference_matches(keys, "Location/Acme")


@pytest.mark.parametrize(
    ("value", "matched"),
    [
        ("eq2021", True),  # the year contains the whole period
        ("eq2021-06", False),  # the month does not
        ("ge2021-06-01", True),  # part of the period is on or after that day
        ("ge2022-01-01", False),
        ("gt2021-12-31", False),  # nothing of it after its last day
        ("gt2021-12-30", True),
        ("lt2021-01-01", False),  # nothing before its first
        # R4: le is "lt or eq"; nothing of the period lies before its first day, and that day
        # does not contain the whole period.
        ("le2021-01-01", False),
        ("le2021-01-02", True),  # its first day lies below that day
        ("le2020-12-31", False),
        ("sa2020-12-31", True),
        ("sa2021-01-01", False),
        ("eb2022-01-01", True),
        ("ne2021", False),
        ("ne2021-06", True),
    ],
)
def test_date_prefixes_on_a_period(value, matched):
    ranges = oracle.date_ranges(node("Period", {"start": "2021-01-01", "end": "2021-12-31"}))
    assert oracle.date_matches(ranges, value) is matched


def test_an_open_period_reaches_forever():
    ranges = oracle.date_ranges(node("Period", {"start": "2020-07-07"}))
    assert oracle.date_matches(ranges, "gt2999-01-01")
    assert not oracle.date_matches(ranges, "eq2020-07-07")
    assert not oracle.date_matches(ranges, "lt2020-07-07")


def test_haversine_on_known_distances():
    # One degree of latitude along a meridian is R·π/180.
    assert math.isclose(
        oracle.haversine_km(0, 0, 1, 0), oracle.EARTH_RADIUS_KM * math.pi / 180, rel_tol=1e-9
    )
    # Hartford to Boston is about 148 km as the crow flies.
    assert 140 < oracle.haversine_km(41.7658, -72.6734, 42.3601, -71.0589) < 155


def test_near_radii_keep_clear_of_every_location():
    # A location within rounding distance of the radius could fairly go either way.
    units = dict(cases.NEAR_UNITS)
    assert len(cases.near_cases()) >= 15
    for case in cases.near_cases():
        lat, lon, amount, *unit = case.params[0][1].split("|")
        radius = float(amount) * units[unit[0] if unit else ""]
        for distance in oracle.distances_km(float(lat), float(lon)).values():
            assert abs(distance - radius) > radius * cases.NEAR_MARGIN / 2


def test_the_load_keeps_every_id_and_respects_references():
    bundle = transaction_bundle()
    assert [e["request"]["url"] for e in bundle["entry"]] == list(package.RESOURCES)
    order = dependency_order()
    assert sorted(order) == sorted(package.RESOURCES)
    seen = set()
    for key in order:
        resource = package.RESOURCES[key]
        assert key not in seen
        seen.add(key)
        for ref in cases._local_references(resource):
            assert ref in seen, f"{key} comes before {ref}"


def test_include_closure_follows_iterate_steps_only():
    partof = package.definition("Location", "partof")
    plain = cases.Include("Location", partof, False, False)
    again = cases.Include("Location", partof, True, False)
    start = {"Location/oracle-new-haven"}
    assert cases.include_closure(start, [plain]) == {"Location/oracle-west-hartford"}
    assert cases.include_closure(start, [again]) == {
        "Location/oracle-west-hartford",
        "Location/oracle-hartford",
    }
