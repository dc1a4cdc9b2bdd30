"""What a search reads, as the authorization decision sees it before the search runs."""

from __future__ import annotations

import pytest

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
