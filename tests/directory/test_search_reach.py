"""What a search reads, as the authorization decision sees it before the search runs."""

from __future__ import annotations

import re

import pytest

from directory.search.filters import filtered
from directory.search.params import parse
from directory.search.reach import reach


@pytest.mark.parametrize(
    "resource_type, pairs, returned, matched",
    [
        ("Organization", [("name", "x")], {"Organization"}, {"Organization"}),
        (
            "PractitionerRole",
            [("_include", "PractitionerRole:practitioner")],
            {"PractitionerRole", "Practitioner"},
            {"PractitionerRole"},
        ),
        # An explicit target narrows a wildcard; an impossible one adds nothing (search refuses).
        (
            "PractitionerRole",
            [("_include", "PractitionerRole:*:Location")],
            {"PractitionerRole", "Location"},
            {"PractitionerRole"},
        ),
        ("PractitionerRole", [("_include", "PractitionerRole:practitioner:Endpoint")],
         {"PractitionerRole"}, {"PractitionerRole"}),
        ("Organization", [("_revinclude:iterate", "Endpoint:organization")],
         {"Organization", "Endpoint"}, {"Organization"}),
        ("PractitionerRole", [("location.partof.name", "x")],
         {"PractitionerRole"}, {"PractitionerRole", "Location"}),
        ("Organization", [("_has:PractitionerRole:organization:_has:Endpoint:x:y", "1")],
         {"Organization"}, {"Organization", "PractitionerRole", "Endpoint"}),
        # Values that name nothing real add nothing: the search itself refuses them.
        ("Organization", [("_include", "Nope:x"), ("_include", "bad")],
         {"Organization"}, {"Organization"}),
    ],
)  # fmt: skip
def test_reach(resource_type, pairs, returned, matched):
    result = reach(resource_type, pairs)
    assert (result.returned, result.matched) == (returned, matched)


def test_has_nested_beyond_the_bound_names_only_the_levels_within_it():
    name = "_has:Organization:partof:" * 20 + "name"
    assert reach("Organization", [(name, "x")]).matched == {"Organization"}
    name = "_has:PractitionerRole:organization:_has:Patient:x:y"
    assert reach("Organization", [(name, "x")]).matched == {"Organization", "PractitionerRole"}


@pytest.mark.parametrize(
    "resource_type, pairs, returned, matched",
    [
        ("PractitionerRole", [("location.organization.name", "x")],
         {"PractitionerRole"}, {"PractitionerRole", "Location", "Organization"}),
        ("PractitionerRole", [("practitioner:Practitioner.name", "x")],
         {"PractitionerRole"}, {"PractitionerRole", "Practitioner"}),
        # A chain no target can evaluate is refused: it reads nothing.
        ("PractitionerRole", [("practitioner.colour", "x")],
         {"PractitionerRole"}, {"PractitionerRole"}),
        # A chain inside `_has` reads the chain's types from the referring type.
        ("Practitioner", [("_has:PractitionerRole:practitioner:location.organization.name", "x")],
         {"Practitioner"}, {"Practitioner", "PractitionerRole", "Location", "Organization"}),
        ("PractitionerRole", [("_include", "*")],
         {"PractitionerRole", "Practitioner", "Organization", "Location", "Endpoint",
          "HealthcareService"},
         {"PractitionerRole"}),
        # Iterated, `*` follows the references of whatever was added, to a fixed point
        # (Plan-Net's Organization coverage-area points at Locations).
        ("Organization", [("_include:iterate", "*")],
         {"Organization", "Endpoint", "Location"}, {"Organization"}),
        ("Location", [("_include:iterate", "*")],
         {"Location", "Organization", "Endpoint"}, {"Location"}),
        ("PractitionerRole", [("_include:iterate", "Location:organization")],
         {"PractitionerRole", "Organization"}, {"PractitionerRole"}),
    ],
)  # fmt: skip
def test_reach_of_chains_has_and_iterate(resource_type, pairs, returned, matched):
    result = reach(resource_type, pairs)
    assert (result.returned, result.matched) == (returned, matched)


# Every type literal in the SQL the engine builds is a type it reads.
_TYPE_LITERAL = re.compile(r"(?:resource_type|target_type)\"? = '?([A-Za-z]+)'?")


@pytest.mark.parametrize(
    "resource_type, name",
    [
        ("PractitionerRole", "practitioner.name"),
        ("PractitionerRole", "location.organization.name"),
        ("PractitionerRole", "location.partof.organization.name"),  # 3 hops: SQLite takes no more
        ("PractitionerRole", "organization:Organization.endpoint.organization.name"),
        ("Organization", "_has:PractitionerRole:organization:practitioner.name"),
        ("Organization", "_has:Location:organization:_has:PractitionerRole:location:active"),
        ("Practitioner", "_has:PractitionerRole:practitioner:location.organization.name"),
        ("Endpoint", "_has:Organization:endpoint:_has:PractitionerRole:organization:active"),
    ],
)
def test_reach_names_every_type_the_engine_reads(db, resource_type, name):
    value = "true" if name.endswith("active") else "x"
    sql = str(filtered(parse(resource_type, [(name, value)], strict=True)).query)
    read = set(_TYPE_LITERAL.findall(sql))
    assert read and read <= reach(resource_type, [(name, value)]).matched
