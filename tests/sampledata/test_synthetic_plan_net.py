"""The generator's national-directory content: payers, networks, plans, services, affiliations.

Oracles are the Plan-Net package's own StructureDefinitions, ValueSets and SearchParameters:
what a generated resource claims in `meta.profile` is checked against the profile's snapshot, and
the IG's FHIRPath expressions must find the links the benchmark queries rely on.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import cache
from io import StringIO

import fhirpathpy
import pytest
from django.core.management import call_command
from fhirpathpy.models import models

from directory.management.commands.loaddirectory import local_references
from directory.models import Resource
from directory.registry import RESOURCE_TYPES
from sampledata.elements import concept
from sampledata.generator import PRODUCTS, DirectoryGenerator, payer_count
from sampledata.places import CITIES
from sampledata.terminology import (
    NUCC_SYSTEM,
    PLAN_NET,
    PLAN_NET_AFFILIATION_ROLE,
    PLAN_NET_ORG_TYPE,
    PLAN_NET_PROFILE,
    SERVICE_CATEGORY_SYSTEM,
    SERVICE_KIND,
    SERVICE_TYPE_DISPLAY,
    SERVICE_TYPE_SYSTEM,
    SPECIALTIES,
    SPECIALTY_BY_CODE,
)
from tests import plannet

NEW_TYPES = {"HealthcareService", "OrganizationAffiliation", "InsurancePlan"}
CITY = {(c.name, c.state): c for c in CITIES}


@cache
def generated_groups(seed: int = 4) -> tuple[tuple[tuple[str, dict], ...], ...]:
    gen = DirectoryGenerator(2000, 60, seed)
    groups = [*gen.organization_groups(), *gen.practitioner_groups()]
    return tuple(tuple(group) for group in groups)


def generated(seed: int = 4) -> list[dict]:
    return [content for group in generated_groups(seed) for _, content in group]


def of_type(resource_type: str, seed: int = 4) -> list[dict]:
    return [r for r in generated(seed) if r["resourceType"] == resource_type]


# ---------------------------------------------------------------- shape


def test_every_national_directory_type_is_generated():
    counts = Counter(r["resourceType"] for r in generated())
    assert counts.keys() >= NEW_TYPES
    networks = [r for r in of_type("Organization") if r["id"].startswith("g4-net-")]
    assert len(networks) == 2 * payer_count(60)
    # One service per provider location; coverage areas are not places of care.
    sites = [r for r in of_type("Location") if "position" in r]
    assert counts["HealthcareService"] == len(sites)
    assert counts["InsurancePlan"] == len(PRODUCTS) * payer_count(60)


def test_new_content_is_deterministic_and_leaves_the_rest_as_it_was():
    assert generated_groups(4) == tuple(
        tuple(g)
        for g in [
            *DirectoryGenerator(2000, 60, 4).organization_groups(),
            *DirectoryGenerator(2000, 60, 4).practitioner_groups(),
        ]
    )
    assert of_type("HealthcareService", 4) != of_type("HealthcareService", 5)


def test_references_resolve_within_the_set_and_in_load_order():
    """Every reference names a generated resource in the same group or an earlier one, which
    is what lets generatedirectory load group by group with reference checks on."""
    seen: set[tuple[str, str]] = set()
    checked = 0
    for group in generated_groups():
        keys = {(t, c["id"]) for t, c in group}
        for _, content in group:
            missing = local_references(content) - seen - keys
            assert not missing, (content["id"], missing)
            checked += len(local_references(content))
        seen |= keys
    assert checked > 5000


def test_roles_name_networks_their_organization_joined():
    affiliations = {
        a["participatingOrganization"]["reference"]: {n["reference"] for n in a.get("network", [])}
        for a in of_type("OrganizationAffiliation")
    }
    parents = {
        f"Organization/{o['id']}": o.get("partOf", {}).get("reference")
        for o in of_type("Organization")
    }
    roles = of_type("PractitionerRole")
    with_networks = 0
    for role in roles:
        networks = {e["valueReference"]["reference"] for e in role.get("extension", [])}
        if networks:
            with_networks += 1
            org = role["organization"]["reference"]
            top = parents.get(org) or org
            assert networks == affiliations[top]
    assert 0.3 < with_networks / len(roles) < 0.95


def test_positions_lie_in_the_city_of_the_address():
    places = [r for r in of_type("Location") if "position" in r]
    assert places
    for place in places:
        city = CITY[(place["address"]["city"], place["address"]["state"])]
        position = place["position"]
        assert distance_km(city, position["latitude"], position["longitude"]) < 30, place["id"]


def distance_km(city, latitude: float, longitude: float) -> float:
    """Great-circle distance (haversine) from the city's centre."""
    lat1, lat2 = math.radians(city.latitude), math.radians(latitude)
    dlat, dlon = lat2 - lat1, math.radians(longitude - city.longitude)
    a = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(a))


def test_city_coordinates_are_in_the_united_states():
    for city in CITIES:
        assert 18 < city.latitude < 72 and -170 < city.longitude < -66, city.name


# ---------------------------------------------------------------- Plan-Net conformance


@cache
def package_resources() -> dict[str, dict]:
    found = {}
    for resource in plannet.package_resources():
        if "url" in resource:
            found[resource["url"]] = resource
    return found


def expand(url: str) -> set[tuple[str, str | None]]:
    """(system, code) pairs of a package ValueSet; (system, None) when a whole system is in."""
    valueset = package_resources().get(url.split("|")[0])
    if valueset is None:
        return set()
    found: set = set()
    for include in valueset["compose"].get("include", []):
        for other in include.get("valueSet", []):
            found |= expand(other)
        if "system" in include:
            found |= system_codes(include)
    for exclude in valueset["compose"].get("exclude", []):
        found -= {(exclude["system"], c["code"]) for c in exclude.get("concept", [])}
    return found


def system_codes(include: dict) -> set[tuple[str, str | None]]:
    system = include["system"]
    if "concept" in include:
        return {(system, c["code"]) for c in include["concept"]}
    codesystem = package_resources().get(system)
    if codesystem is None:
        return {(system, None)}
    return {(system, c["code"]) for c in flatten(codesystem.get("concept", []))}


def flatten(concepts: list[dict]) -> list[dict]:
    return [x for c in concepts for x in [c, *flatten(c.get("concept", []))]]


def in_valueset(value, allowed: set) -> bool:
    if isinstance(value, str):
        return any(code == value for _, code in allowed)
    codings = value.get("coding", [value]) if isinstance(value, dict) else []
    return any(
        (c.get("system"), c.get("code")) in allowed or (c.get("system"), None) in allowed
        for c in codings
    )


def values_at(resource: dict, relative: str) -> list:
    current = [resource]
    for step in relative.split(".") if relative else []:
        found = []
        for node in current:
            value = node.get(step) if isinstance(node, dict) else None
            found.extend(value if isinstance(value, list) else [] if value is None else [value])
        current = found
    return current


def matches_pattern(value, pattern) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            matches_pattern(value.get(k), v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(value, list) and all(
            any(matches_pattern(v, p) for v in value) for p in pattern
        )
    return value == pattern


def profile_problems(resource: dict, profile: dict) -> list[str]:
    """Cardinalities, fixed and pattern values, required bindings and root invariants of a
    profile's snapshot (slices and choice elements aside) that `resource` breaks."""
    problems = []
    rtype = profile["type"]
    for element in profile["snapshot"]["element"]:
        path = element["path"]
        if ":" in element["id"] or "[x]" in path or path == rtype:
            continue
        parent, _, leaf = path[len(rtype) + 1 :].rpartition(".")
        for node in values_at(resource, parent):
            if not isinstance(node, dict):
                continue
            found = values_at(node, leaf)
            top = element.get("max", "*")
            if len(found) < element.get("min", 0) or (top != "*" and len(found) > int(top)):
                problems.append(f"{path}: {len(found)} outside {element['min']}..{top}")
            for key, expected in element.items():
                if key.startswith(("fixed", "pattern")):
                    problems += [
                        f"{path}: {v!r} is not {key} {expected!r}"
                        for v in found
                        if not matches_pattern(v, expected)
                    ]
            binding = element.get("binding", {})
            if binding.get("strength") == "required" and found:
                allowed = expand(binding.get("valueSet", ""))
                if allowed and not all(in_valueset(v, allowed) for v in found):
                    problems.append(f"{path}: not in {binding['valueSet']}")
    for element in profile["snapshot"]["element"]:
        if element["path"] != rtype:
            continue
        for constraint in element.get("constraint", []):
            if constraint.get("severity") == "error" and "expression" in constraint:
                result = fhirpathpy.evaluate(resource, constraint["expression"], model=models["r4"])
                if result != [True]:
                    problems.append(f"{constraint['key']}: {constraint['expression']}")
    return problems


def test_every_claimed_profile_holds():
    claimed = Counter()
    for resource in generated():
        for url in resource.get("meta", {}).get("profile", []):
            profile = package_resources()[url]
            assert profile["type"] == resource["resourceType"]
            assert profile_problems(resource, profile) == [], resource["id"]
            claimed[profile["id"]] += 1
    assert set(claimed) == {f"plannet-{k}" for k in PLAN_NET_PROFILE}


def test_the_profile_oracle_catches_what_it_should():
    network = next(r for r in of_type("Organization") if r["id"].startswith("g4-net-"))
    profile = package_resources()[PLAN_NET_PROFILE["Network"]]
    broken = {**network, "telecom": [{"system": "phone", "value": "1"}], "active": False}
    broken["type"] = [concept(PLAN_NET_ORG_TYPE, "payer")]
    del broken["partOf"]
    problems = " ".join(profile_problems(broken, profile))
    for expected in ("Organization.telecom", "Organization.active", "Organization.partOf"):
        assert expected in problems
    assert "NetworkTypeVS" in problems
    plan = of_type("InsurancePlan")[0]
    plan_profile = package_resources()[PLAN_NET_PROFILE["InsurancePlan"]]
    without = {k: v for k, v in plan.items() if k != "network"}
    assert "network-or-plan-Network" in " ".join(profile_problems(without, plan_profile))


def test_service_tables_use_plan_net_codes():
    categories = expand(f"{PLAN_NET}/ValueSet/HealthcareServiceCategoryVS")
    service_types = expand(f"{PLAN_NET}/ValueSet/HealthcareServiceTypeVS")
    roles = expand(f"{PLAN_NET}/ValueSet/OrganizationAffiliationRoleVS")
    specialties = expand(f"{PLAN_NET}/ValueSet/SpecialtiesVS")
    for code, (category, service_type, role) in SERVICE_KIND.items():
        assert code in SPECIALTY_BY_CODE
        assert (SERVICE_CATEGORY_SYSTEM, category) in categories
        assert service_type is None or (SERVICE_TYPE_SYSTEM, service_type) in service_types
        assert (PLAN_NET_AFFILIATION_ROLE, role) in roles
    for specialty in SPECIALTIES:
        assert (NUCC_SYSTEM, specialty.code) in specialties, specialty.code
    service_type_vs = package_resources()[f"{PLAN_NET}/ValueSet/HealthcareServiceTypeVS"]
    displays = {
        c["code"]: c["display"]
        for include in service_type_vs["compose"]["include"]
        for c in include.get("concept", [])
    }
    for code, display in SERVICE_TYPE_DISPLAY.items():
        assert displays[code] == display


# ---------------------------------------------------------------- Plan-Net search parameters

# (base, code) of Plan-Net parameters that must find something in generated data.
EXPECTED_VALUES = {
    ("PractitionerRole", "network"),
    ("PractitionerRole", "service"),
    ("HealthcareService", "delivery-method"),
    ("HealthcareService", "service-category"),
    ("HealthcareService", "specialty"),
    ("HealthcareService", "location"),
    ("HealthcareService", "organization"),
    ("InsurancePlan", "network"),
    ("InsurancePlan", "coverage-area"),
    ("InsurancePlan", "owned-by"),
    ("InsurancePlan", "administered-by"),
    ("InsurancePlan", "plan-type"),
    ("Organization", "coverage-area"),
    ("OrganizationAffiliation", "network"),
    ("OrganizationAffiliation", "participating-organization"),
    ("OrganizationAffiliation", "primary-organization"),
    ("OrganizationAffiliation", "service"),
    ("OrganizationAffiliation", "location"),
    ("OrganizationAffiliation", "role"),
    ("OrganizationAffiliation", "specialty"),
}


def extension_value(node: dict) -> dict:
    """Plan-Net's extension parameters (`network`, `coverage-area`) select the Extension itself;
    what is indexed is its value."""
    if "url" in node and "valueReference" in node:
        return node["valueReference"]
    return node


def test_plan_net_expressions_find_the_generated_links():
    resources = generated()
    ids = {(r["resourceType"], r["id"]): r for r in resources}
    found = set()
    for param in plannet.search_parameters():
        run = fhirpathpy.compile(param["expression"], models["r4"])
        for base in param["base"]:
            values = [v for r in resources if r["resourceType"] == base for v in run(r)]
            if values:
                found.add((base, param["code"]))
            if param["type"] == "reference":
                for value in map(extension_value, values):
                    target = tuple(value["reference"].split("/"))
                    assert target in ids, (param["code"], value)
                    if param["code"] == "network":
                        assert ids[target]["meta"]["profile"] == [PLAN_NET_PROFILE["Network"]]
    assert found >= EXPECTED_VALUES, EXPECTED_VALUES - found


# ---------------------------------------------------------------- generatedirectory


@pytest.mark.django_db
def test_generatedirectory_stores_what_the_server_supports_and_names_the_rest():
    out = StringIO()
    call_command("generatedirectory", practitioners=200, seed=8, stdout=out)
    gen = DirectoryGenerator(200, 5, 8)
    expected = Counter(
        t for g in [*gen.organization_groups(), *gen.practitioner_groups()] for t, _ in g
    )
    stored = Counter(Resource.objects.filter(deleted=False).values_list("resource_type", flat=True))
    assert stored == Counter({t: n for t, n in expected.items() if t in RESOURCE_TYPES})
    missing = sorted(t for t in expected if t not in RESOURCE_TYPES)
    if missing:
        line = re.search(r"Not stored, type not supported by this server: (.*)", out.getvalue())
        assert line and [p.split()[0] for p in line[1].split(", ")] == missing
    else:
        assert "Not stored" not in out.getvalue()


def test_every_plan_net_reference_meets_its_target_profile():
    """What the server checks on API writes (directory/profiles/targets.py) holds of the
    generated set: a generated Location has no `mode` (plannet-Location forbids it) and nothing
    claiming Plan-Net names a closed (inactive) organization."""
    from directory.profiles import targets
    from directory.profiles.validator import validate_profile

    by_key = {(r["resourceType"], r["id"]): r for r in generated()}
    stamps = {"versionId": "1", "lastUpdated": "2024-01-02T03:04:05Z"}
    checked, failing = 0, []
    for resource in generated():
        for claim in targets.claims(resource):
            target = by_key[claim.type, claim.id]
            target = {**target, "meta": {**target.get("meta", {}), **stamps}}
            checked += 1
            if all(validate_profile(target, url) for url in claim.profiles):
                failing.append((resource["id"], claim.expression, claim.id))
    assert checked > 500
    assert failing == []


def test_plan_net_affiliations_name_active_organizations():
    """plannet-Organization fixes `active` to true, so an affiliation claiming Plan-Net cannot
    name an inactive one (an inactive hospital system was the primary of its city's
    affiliations: their import was refused, generated by seed 1 at 400 organizations)."""
    groups = DirectoryGenerator(100, 200, 3).organization_groups()
    resources = [content for group in groups for _, content in group]
    active = {r["id"]: r["active"] for r in resources if r["resourceType"] == "Organization"}
    named = [
        r[element]["reference"].split("/")[1]
        for r in resources
        if r["resourceType"] == "OrganizationAffiliation" and r.get("meta", {}).get("profile")
        for element in ("organization", "participatingOrganization")
        if element in r
    ]
    assert named
    assert all(active[org_id] for org_id in named)
