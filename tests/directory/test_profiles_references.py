"""Reference target types: a literal reference must name a type its element's targetProfile allows.

The oracle is the vendored StructureDefinitions themselves: every Reference element of every
directory type (R4) and of every Plan-Net and NDH profile is walked, and for each a reference of
every other directory type is refused and one of each allowed type accepted, in a resource that is
otherwise valid (a Plan-Net or NDH example of that type or profile, or a minimal Group).
"""

from __future__ import annotations

import copy
import re

import pytest
from fhir.resources.R4B import get_fhir_model_class

from directory import profiles
from directory.errors import InvalidResource
from directory.profiles.definitions import (
    CORE_PROFILE,
    RESOURCE_TYPES,
    Definition,
    Element,
    definitions,
)
from directory.profiles.validator import allowed_targets, referenced_type, validate_profile
from directory.validation import validate_resource
from tests import ndh, plannet

# Plan-Net's first: the core definitions' cases keep the bases they had before NDH was added.
EXAMPLES = [*plannet.examples(), *ndh.examples()]
MINIMAL = {"Group": {"resourceType": "Group", "type": "practitioner", "actual": True}}
# What a backbone or extension the graft creates must hold besides the reference (its required
# parts, per the definitions); no example has them.
FILLS = {
    "InsurancePlan.coverage": {
        "type": {"text": "Medical"},
        "benefit": [{"type": {"text": "Visit"}}],
    },
    # US Core's identifier formats (us-core-16/17 NPI with its check digit, us-core-18 CLIA,
    # us-core-19 NAIC), for NDH's identifier slices.
    "Organization.identifier:NPI": {"value": "1356362586"},
    "Practitioner.identifier:NPI": {"value": "1356362586"},
    "Organization.identifier:CLIA": {"value": "05D0123456"},
    "Organization.identifier:NAIC": {"value": "12345"},
    "PractitionerRole.extension:qualification": {
        "extension": [
            {"url": "code", "valueCodeableConcept": {"text": "MD"}},
            {"url": "status", "valueCode": "active"},
        ]
    },
}


def _base(definition: Definition, element: Element) -> dict:
    """A valid resource of the definition's type (claiming it if it is a profile), preferring an
    example that already holds the element's top-level backbone (InsurancePlan.coverage)."""
    core = definition.url.startswith(CORE_PROFILE)
    candidates = [
        r
        for r in EXAMPLES
        if r["resourceType"] == definition.type and (core or definition.url in r["meta"]["profile"])
    ]
    top = element.path.split(".")[1]
    chosen = next((r for r in candidates if top in r), candidates[0] if candidates else None)
    base = copy.deepcopy(chosen or MINIMAL[definition.type])
    if core:
        base.pop("meta", None)  # judged by R4 alone
    return base


def _cases() -> list[tuple[Definition, Element]]:
    cases, seen = [], set()
    for definition in definitions().values():
        if definition.kind != "resource" or definition.type not in RESOURCE_TYPES:
            continue
        if definition.url in seen:
            continue
        seen.add(definition.url)
        for element in definition.by_id.values():
            if "Reference" in element.types and _allowed_here(definition, element):
                cases.append((definition, element))
    return cases


def _allowed_here(definition: Definition, element: Element) -> bool:
    """Whether the element may appear (neither it nor an element above it is prohibited, as
    ndh-Network prohibits US Core's identifier slices) and names the types it may refer to."""
    steps = element.id.split(".")
    ancestors = (definition.by_id.get(".".join(steps[:n])) for n in range(2, len(steps) + 1))
    return all(a is None or a.max != 0 for a in ancestors) and bool(allowed_targets(element))


CASES = _cases()


def _graft(resource: dict, definition: Definition, element: Element, reference: str) -> None:
    """Put `reference` at the element's place, creating the backbones and slices on the way."""
    node, steps = resource, element.id.split(".")[1:]
    for depth, step in enumerate(steps):
        name, _, slice_name = step.partition(":")
        here = definition.by_id[".".join([definition.root.id, *steps[: depth + 1]])]
        # Whether the JSON holds an array: the unsliced element's cardinality says.
        unsliced = definition.by_id[".".join([definition.root.id, *steps[:depth], name])]
        key = "valueReference" if name == "value[x]" else name
        if depth == len(steps) - 1:
            value = {"reference": reference}
            node[key] = value if unsliced.max == 1 else [value]
            return
        if unsliced.max == 1:
            node = node.setdefault(key, {})
            continue
        items = node.setdefault(key, [])
        if slice_name:
            node = _slice_item(items, here)
        else:
            node = items[0] if items else _appended(items, {}, here.id)


def _slice_item(items: list, here: Element) -> dict:
    """The item of `items` in slice `here`, appended if none is: an extension slice by its url,
    a pattern slice (US Core's NPI, CLIA and NAIC identifiers on NDH) by its pattern."""
    if here.fixed is not None and here.fixed[0] == "pattern" and isinstance(here.fixed[1], dict):
        pattern = here.fixed[1]
        match = next((i for i in items if pattern.items() <= i.items()), None)
        return match if match is not None else _appended(items, dict(pattern), here.id)
    url = here.type_profiles[0] if here.type_profiles else _fixed_url(here)
    match = next((i for i in items if i.get("url") == url), None)
    return match if match is not None else _appended(items, {"url": url}, here.id)


def _fixed_url(extension: Element) -> object:
    """A sub-extension slice's url, fixed on its `url` child (Plan-Net's qualification parts)."""
    child = next(c for c in extension.children if c.name == "url")
    assert child.fixed is not None
    return child.fixed[1]


def _appended(items: list, item: dict, element_id: str) -> dict:
    items.append({**item, **copy.deepcopy(FILLS.get(element_id, {}))})
    return items[-1]


def _issues(resource: dict) -> list[dict]:
    try:
        validate_resource(resource["resourceType"], resource)
    except InvalidResource as error:
        return error.issues()
    return []


def _case_id(case: tuple[Definition, Element]) -> str:
    return f"{case[0].url.rsplit('/', 1)[-1]}:{case[1].id}"


def test_the_walk_covers_core_plan_net_and_ndh_elements():
    ids = {_case_id(c) for c in CASES}
    assert "PractitionerRole:PractitionerRole.practitioner" in ids
    assert "Group:Group.member.entity" in ids
    assert "plannet-Network:Organization.partOf" in ids
    assert "ndh-PractitionerRole:PractitionerRole.practitioner" in ids
    assert "ndh-Network:Organization.partOf" in ids
    assert len(CASES) >= 120


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_reference_element_refuses_other_types_and_takes_its_own(case):
    definition, element = case
    allowed = allowed_targets(element)
    assert allowed
    for target in sorted(allowed):
        resource = _base(definition, element)
        _graft(resource, definition, element, f"{target}/t1")
        assert _issues(resource) == [], target
    for target in sorted(set(RESOURCE_TYPES) - allowed):
        resource = _base(definition, element)
        _graft(resource, definition, element, f"https://other.example/fhir/{target}/t1")
        issues = _issues(resource)
        assert issues, target
        assert [(i["code"], _unindexed(i["expression"][0])) for i in issues] == [
            ("value", f"{element.path.replace('[x]', '')}.reference")
        ], target
        assert f"type {target};" in issues[0]["diagnostics"]


def _unindexed(expression: str) -> str:
    """`A.b[0].c.ofType(Reference).reference` as its element path `A.b.c.reference`."""
    return re.sub(r"\[\d+\]|\.ofType\(\w+\)", "", expression)


def test_fhir_resources_does_not_check_reference_types():
    """Why the check is ours: the structural pass takes any type."""
    model = get_fhir_model_class("PractitionerRole")
    model.model_validate(
        {"resourceType": "PractitionerRole", "practitioner": {"reference": "Organization/1"}}
    )
    with pytest.raises(InvalidResource) as refused:
        validate_resource(
            "PractitionerRole",
            {"resourceType": "PractitionerRole", "practitioner": {"reference": "Organization/1"}},
        )
    assert refused.value.issues()[0]["expression"] == ["PractitionerRole.practitioner.reference"]


@pytest.mark.parametrize(
    ("reference", "named"),
    [
        ("Practitioner/p1", "Practitioner"),
        ("Practitioner/p1/_history/2", "Practitioner"),
        ("https://h.example/fhir/Organization/o1", "Organization"),
        ("https://h.example/fhir/Organization/o1/_history/3", "Organization"),
        ("Organization?identifier=x|1", "Organization"),
        ("#loc", "Location"),
        ("#", "PractitionerRole"),
        # Not told without resolving: left to the reference checks that resolve them.
        ("#nowhere", None),
        ("urn:uuid:7f1c3f0e-5d0a-4a52-9d59-2f1d1d6a0001", None),
        ("https://h.example/some/page", None),
        ("https://h.example/fhir/Nothing/o1", None),  # not a resource type: any web address
        ("https://Organization/o1", None),  # the host, not a path segment
    ],
)
def test_the_type_a_reference_names(reference, named):
    container = {
        "resourceType": "PractitionerRole",
        "contained": [{"resourceType": "Location", "id": "loc"}],
    }
    assert referenced_type(reference, container) == named


def test_logical_and_contained_references():
    role = {"resourceType": "PractitionerRole", "practitioner": {"identifier": {"value": "1"}}}
    assert profiles.validate(role) == []
    role = {
        "resourceType": "PractitionerRole",
        "practitioner": {"reference": "#o"},
        "contained": [{"resourceType": "Organization", "id": "o", "name": "O"}],
    }
    assert [i["expression"] for i in profiles.validate(role)] == [
        ["PractitionerRole.practitioner.reference"]
    ]
    role["contained"][0] = {"resourceType": "Practitioner", "id": "o"}
    assert profiles.validate(role) == []


def test_the_profile_pass_checks_its_own_targets():
    """A profile's targetProfile names profiles (plannet-Organization): the type they constrain
    is what the profile pass checks, as the R4 pass does with R4's."""
    network = next(r for r in EXAMPLES if r["meta"]["profile"][0].endswith("/plannet-Network"))
    network = {**copy.deepcopy(network), "partOf": {"reference": "Location/l1"}}
    issues = validate_profile(network, network["meta"]["profile"][0])
    assert [(i["details"]["text"], i["expression"]) for i in issues] == [
        ("plannet-Network: Organization.partOf", ["Organization.partOf.reference"])
    ]


def _extension_cases() -> list[tuple[Definition, Element, dict]]:
    """Reference elements of the extension definitions, each with an example that uses the
    extension on the resource itself (the profile pass reaches them through its slices)."""
    cases = []
    for url, definition in definitions().items():
        if definition.type != "Extension" or url != definition.url:
            continue
        user = next(
            (r for r in EXAMPLES if any(e.get("url") == url for e in r.get("extension", []))), None
        )
        for element in definition.by_id.values():
            if (
                user
                and "Reference" in element.types
                and element.max != 0
                and allowed_targets(element)
            ):
                cases.append((definition, element, user))
    return cases


EXTENSION_CASES = _extension_cases()


def _set_in_extension(
    resource: dict, case: tuple[Definition, Element, dict], reference: str
) -> None:
    definition, element, _ = case
    extension = next(e for e in resource["extension"] if e["url"] == definition.url)
    step = element.id.split(".")[1]  # "value[x]" or "extension:part"
    if step.startswith("extension:"):
        part_url = _fixed_url(definition.by_id[f"Extension.{step}"])
        parts = extension.setdefault("extension", [])
        extension = next((p for p in parts if p["url"] == part_url), None) or _appended(
            parts, {"url": part_url}, ""
        )
        extension.pop("valueCodeableConcept", None)  # whereValid: a code or a Location
    extension["valueReference"] = {"reference": reference}


def test_the_extension_walk_covers_plan_net_and_ndh_references():
    assert {c[0].url.rsplit("/", 1)[-1] for c in EXTENSION_CASES} >= {
        "location-reference",
        "network-reference",
        "newpatients",
        "qualification",
        # NDH's, each used by one of the IG's examples
        "base-ext-endpoint-reference",
        "base-ext-fundingSource",
        "base-ext-insuranceplan-reference",
        "base-ext-location-reference",
        "base-ext-network-reference",
        "base-ext-newpatients",
    }


@pytest.mark.parametrize(
    "case", EXTENSION_CASES, ids=lambda c: f"{c[0].url.rsplit('/', 1)[-1]}:{c[1].id}"
)
def test_every_extension_reference_refuses_other_types_and_takes_its_own(case):
    _, element, user = case
    allowed = allowed_targets(element)
    assert allowed
    for target in sorted(allowed):
        resource = copy.deepcopy(user)
        _set_in_extension(resource, case, f"{target}/t1")
        assert _issues(resource) == [], target
    for target in sorted(set(RESOURCE_TYPES) - allowed):
        resource = copy.deepcopy(user)
        _set_in_extension(resource, case, f"{target}/t1")
        issues = _issues(resource)
        # The rule is the extension's element, or the profile's copy of it (qualification).
        assert [i["code"] for i in issues] == ["value"], target
        assert issues[0]["details"]["text"].endswith(element.id.split(".", 1)[1])
        assert issues[0]["expression"][0].endswith(".value.ofType(Reference).reference")
