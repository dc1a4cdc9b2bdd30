"""Write validation from StructureDefinitions: R4 invariants, bindings and Plan-Net profiles.

The oracle is the Plan-Net IG's own 49 examples (they must all pass) and fhirpathpy evaluating
each constraint's own expression (the direct shortcuts must agree with it).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from directory import profiles
from directory.errors import InvalidResource
from directory.profiles import invariants, validator
from directory.registry import RESOURCE_TYPES
from directory.validation import validate_resource
from tests import plannet

EXAMPLES = plannet.examples()
BY_ID = {(r["resourceType"], r["id"]): r for r in EXAMPLES}
PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/"


def example(resource_type: str, logical_id: str) -> dict:
    return copy.deepcopy(BY_ID[(resource_type, logical_id)])


def first(resource_type: str) -> dict:
    return copy.deepcopy(next(r for r in EXAMPLES if r["resourceType"] == resource_type))


def rules(resource: dict) -> list[tuple[str, str]]:
    """(rule, expression) of each issue `resource` raises, through the routable entry point
    when the type is served on this branch, else through the validator directly."""
    if resource["resourceType"] in RESOURCE_TYPES:
        try:
            validate_resource(resource["resourceType"], resource)
        except InvalidResource as error:
            issues = error.issues()
        else:
            issues = []
    else:
        issues = profiles.validate(resource)
    return [(i["details"]["text"], i["expression"][0]) for i in issues if "details" in i]


@pytest.mark.parametrize("resource", EXAMPLES, ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_every_plan_net_example_passes(resource):
    assert profiles.validate(resource) == []
    if resource["resourceType"] in RESOURCE_TYPES:
        validate_resource(resource["resourceType"], resource)


def test_examples_claim_known_profiles():
    claimed = {p for r in EXAMPLES for p in r["meta"]["profile"]}
    assert claimed and all(profiles.known(url) for url in claimed)
    assert claimed <= set(profiles.profile_urls())


# ---------------------------------------------------------------- R4 invariants


def test_organization_without_name_or_identifier_fails_org_1():
    assert rules({"resourceType": "Organization", "active": True}) == [("org-1", "Organization")]


def test_organization_home_telecom_fails_org_3_and_home_address_org_2():
    org = {
        "resourceType": "Organization",
        "name": "Bay Clinic",
        "telecom": [{"system": "phone", "value": "555", "use": "work"}] * 1
        + [{"system": "phone", "value": "556", "use": "home"}],
        "address": [{"use": "home", "city": "Hartford"}],
    }
    assert sorted(rules(org)) == [
        ("org-2", "Organization.address[0]"),
        ("org-3", "Organization.telecom[1]"),
    ]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            {"resourceType": "Location", "name": "A", "telecom": [{"value": "555"}]},
            ("cpt-2", "Location.telecom[0]"),
        ),
        (
            {
                "resourceType": "Practitioner",
                "name": [{"family": "Doe", "period": {"start": "2020-01-01", "end": "2019"}}],
            },
            ("per-1", "Practitioner.name[0].period"),
        ),
        (
            {
                "resourceType": "Endpoint",
                "status": "active",
                "address": "https://x.test",
                "connectionType": {"code": "hl7-fhir-rest"},
                "payloadType": [{"text": "any"}],
                "extension": [{"url": "http://example.org/x"}],
            },
            ("ext-1", "Endpoint.extension[0]"),
        ),
        (
            {"resourceType": "Organization", "name": "A", "contact": [{}]},
            ("ele-1", "Organization.contact[0]"),
        ),
        (
            {
                "resourceType": "Group",
                "type": "practitioner",
                "actual": False,
                "member": [{"entity": {"reference": "Practitioner/1"}}],
            },
            ("grp-1", "Group"),
        ),
        ({"resourceType": "InsurancePlan", "status": "active"}, ("ipn-1", "InsurancePlan")),
        (
            {"resourceType": "HealthcareService", "availableTime": [{"daysOfWeek": ["funday"]}]},
            (
                "HealthcareService.availableTime.daysOfWeek",
                "HealthcareService.availableTime[0].daysOfWeek[0]",
            ),
        ),
        (
            {
                "resourceType": "OrganizationAffiliation",
                "telecom": [{"system": "pigeon", "value": "coo"}],
            },
            ("ContactPoint.system", "OrganizationAffiliation.telecom[0].system"),
        ),
    ],
    ids=["cpt-2", "per-1", "ext-1", "ele-1", "grp-1", "ipn-1", "days-of-week", "contact-system"],
)
def test_r4_rule_fails_with_its_key_and_element(resource, expected):
    assert expected in rules(resource)


def test_unevaluable_constraints_are_listed_in_the_readme():
    readme = (Path(profiles.__file__).parent / "data" / "README.md").read_text()
    assert all(key in readme for key in invariants.UNEVALUATED)


# ---------------------------------------------------------------- Plan-Net profiles


def test_plan_net_organization_without_active_fails_its_cardinality():
    org = example("Organization", "Hospital")
    del org["active"]
    assert rules(org) == [("plannet-Organization: Organization.active", "Organization.active")]


def test_plan_net_organization_with_active_false_fails_the_pattern():
    org = example("Organization", "Hospital")
    org["active"] = False
    assert rules(org) == [("plannet-Organization: Organization.active", "Organization.active")]


def test_the_same_organization_without_the_profile_claim_passes():
    org = example("Organization", "Hospital")
    org["active"] = False
    del org["meta"]
    assert rules(org) == []


def test_plan_net_location_fixed_status_and_forbidden_mode():
    location = example("Location", "HospLoc1")
    location["status"] = "inactive"
    location["mode"] = "instance"
    assert sorted(rules(location)) == [
        ("plannet-Location: Location.mode", "Location.mode"),
        ("plannet-Location: Location.status", "Location.status"),
    ]


def test_plan_net_required_binding_violation():
    role = example("PractitionerRole", "JoeSmithRole3")
    role["code"] = [{"coding": [{"system": "http://example.org/roles", "code": "wizard"}]}]
    assert rules(role) == [
        ("plannet-PractitionerRole: PractitionerRole.code", "PractitionerRole.code[0]")
    ]


def test_plan_net_extension_slice_too_many():
    role = example("PractitionerRole", "JoeSmithRole3")
    network = {
        "url": f"{PLAN_NET}network-reference",
        "valueReference": {"reference": "Organization/AcmeofCTStdNet"},
    }
    role["extension"] = [e for e in role.get("extension", []) if e["url"] != network["url"]]
    role["extension"] += [network, network]
    assert rules(role) == [
        (
            "plannet-PractitionerRole: PractitionerRole.extension:network-reference",
            "PractitionerRole.extension",
        )
    ]


def test_plan_net_extension_definition_rules_apply_inside_the_slice():
    """The qualification extension's status part is fixed to 'active' by the Plan-Net snapshot."""
    org = example("Organization", "Hospital")
    qualification = {
        "url": f"{PLAN_NET}qualification",
        "extension": [
            {"url": "code", "valueCodeableConcept": {"text": "licence"}},
            {"url": "status", "valueCode": "active"},
        ],
    }
    org["extension"] = [*org.get("extension", []), qualification]
    assert rules(org) == []
    qualification["extension"][1]["valueCode"] = "revoked"
    at = f"Organization.extension[{len(org['extension']) - 1}]"
    assert rules(org) == [
        (
            "plannet-Organization: Extension.extension:status.value[x]",
            f"{at}.extension[1].value.ofType(code)",
        )
    ]
    qualification["extension"] = [{"url": "status", "valueCode": "active"}]
    assert sorted(rules(org)) == [
        ("plannet-Organization: Extension.extension", f"{at}.extension"),
        ("plannet-Organization: Extension.extension:code", f"{at}.extension"),
    ]


def test_plan_net_slice_by_binding_cardinality():
    service = first("HealthcareService")
    coding = {
        "system": "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/HealthcareServiceCategoryCS",
        "code": "behav",
    }
    service["category"] = [{"coding": [coding]}, {"coding": [coding]}]
    assert rules(service) == [
        (
            "plannet-HealthcareService: HealthcareService.category:plan-net-category",
            "HealthcareService.category",
        )
    ]


def test_plan_net_identifier_pattern_slice_constraint():
    practitioner = example("Practitioner", "JoeSmith")
    practitioner["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "12345"}]
    assert ("plannet-Practitioner: us-core-16", "Practitioner.identifier[0]") in rules(practitioner)


@pytest.mark.parametrize(
    ("resource_type", "logical_id", "change", "rule"),
    [
        (
            "InsurancePlan",
            None,
            lambda r: r.pop("ownedBy"),
            "plannet-InsurancePlan: InsurancePlan.ownedBy",
        ),
        (
            "InsurancePlan",
            None,
            lambda r: (r.pop("network", None), [p.pop("network", None) for p in r.get("plan", [])]),
            "plannet-InsurancePlan: network-or-plan-Network",
        ),
        (
            "OrganizationAffiliation",
            None,
            lambda r: r.update(active=False),
            "plannet-OrganizationAffiliation: OrganizationAffiliation.active",
        ),
        (
            "OrganizationAffiliation",
            None,
            lambda r: (r.pop("organization", None), r.pop("participatingOrganization", None)),
            "plannet-OrganizationAffiliation: organization-or-participatingOrganization",
        ),
        (
            "HealthcareService",
            None,
            lambda r: r.pop("category"),
            "plannet-HealthcareService: HealthcareService.category",
        ),
        ("Endpoint", None, lambda r: r.update(status="off"), "plannet-Endpoint: Endpoint.status"),
        (
            "PractitionerRole",
            "JoeSmithRole3",
            lambda r: (r.pop("telecom", None), r.pop("endpoint", None)),
            "plannet-PractitionerRole: pd-1",
        ),
    ],
    ids=[
        "ownedBy",
        "network",
        "affiliation-active",
        "affiliation-orgs",
        "category",
        "endpoint-status",
        "pd-1",
    ],
)
def test_plan_net_rule_of_each_type(resource_type, logical_id, change, rule):
    resource = example(resource_type, logical_id) if logical_id else first(resource_type)
    change(resource)
    assert rule in [r for r, _ in rules(resource)]


def test_unknown_profile_is_accepted_and_base_rules_still_apply():
    org = {
        "resourceType": "Organization",
        "name": "A",
        "meta": {"profile": ["http://example.org/StructureDefinition/mine"]},
    }
    assert rules(org) == []
    org["telecom"] = [{"system": "phone", "value": "1", "use": "home"}]
    assert rules(org) == [("org-3", "Organization.telecom[0]")]


def test_versioned_profile_claim_is_checked():
    org = example("Organization", "Hospital")
    org["meta"]["profile"] = [f"{PLAN_NET}plannet-Organization|1.2.0"]
    del org["active"]
    assert rules(org) == [("plannet-Organization: Organization.active", "Organization.active")]


def test_required_codes_come_from_the_definitions():
    assert profiles.required_codes("Location.status") == {"active", "suspended", "inactive"}
    assert profiles.required_codes("Organization.active") is None


# ---------------------------------------------------------------- direct checks vs the engine


def _recorded_constraint_calls(resources: list[dict]) -> list[tuple]:
    calls = []
    original = invariants.holds

    def record(expression, node, type_path, resource):
        calls.append((expression, node, type_path, resource))
        return original(expression, node, type_path, resource)

    validator.holds = record
    try:
        for resource in resources:
            profiles.validate(resource)
            for claimed in resource.get("meta", {}).get("profile", []):
                validator.validate_profile(resource, claimed)
    finally:
        validator.holds = original
    return calls


CRAFTED = [
    {
        "resourceType": "Organization",
        "_name": {"extension": [{"url": "http://example.org/x", "valueCode": "c"}]},
        "telecom": [
            {"system": "phone", "value": "1", "use": "home"},
            {"value": "2"},
            {"_value": {"extension": [{"url": "http://example.org/x", "valueCode": "c"}]}},
            {
                "_system": {"extension": [{"url": "http://example.org/x", "valueCode": "c"}]},
                "value": "3",
            },
        ],
        "address": [{"use": "home", "city": "X"}, {"use": "work", "city": "Y"}],
    },
    {"resourceType": "Organization", "active": True, "identifier": []},
    {"resourceType": "InsurancePlan", "identifier": [{"value": "1"}, {"value": "2"}]},
    {
        "resourceType": "Practitioner",
        "meta": {"profile": [f"{PLAN_NET}plannet-Practitioner"]},
        "identifier": [
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": value}
            for value in ("1234567890", "1234567893", "12345", "abcdefghij")
        ],
    },
    {
        "resourceType": "Organization",
        "name": "A",
        "contact": [{}],
        "address": [{"id": "a1"}],
        "extension": [
            {"url": "x"},
            {"url": "y", "valueString": "v", "extension": [{"url": "z", "valueCode": "c"}]},
        ],
    },
    {
        "resourceType": "Organization",
        "name": "A",
        "partOf": {"reference": "#missing"},
        "contained": [{"resourceType": "Location", "id": "loc"}],
    },
    {
        "resourceType": "Organization",
        "name": "A",
        "partOf": {"reference": "#loc"},
        "contained": [{"resourceType": "Location", "id": "loc", "meta": {"versionId": "2"}}],
    },
]


def _engine_misses_extension_only_primitives(expression: str, node: dict) -> bool:
    """fhirpathpy's children() leaves out a primitive present only as its extensions ("_value"),
    which FHIR counts as a child: on an element whose only content is such a primitive the engine
    fails ele-1 and the direct check (rightly) does not. The one known divergence."""
    content = [key for key in node if key != "id"]
    return (
        expression.startswith("hasValue()")
        and bool(content)
        and all(key.startswith("_") for key in content)
    )


def test_direct_checks_agree_with_fhirpathpy():
    calls = _recorded_constraint_calls([*EXAMPLES, *CRAFTED])
    checked = 0
    for expression, node, type_path, resource in calls:
        direct = invariants.DIRECT.get(expression)
        if direct is None or not isinstance(node, dict):
            continue
        verdict = direct(node)
        if verdict is not None:
            checked += 1
            engine = invariants.holds_by_engine(expression, node, type_path, resource)
            if _engine_misses_extension_only_primitives(expression, node):
                assert (verdict, engine) == (True, False)
                continue
            assert verdict == engine, (expression, node)
    # ele-1 and ext-1 both judged both ways, failures included
    assert checked > 500
    verdicts = {(e, invariants.holds(e, n, t, r)) for e, n, t, r in calls if e in invariants.DIRECT}
    ele_1, npi = next(iter(invariants.DIRECT)), invariants._expression_of("us-core-17")
    assert {(ele_1, False), (npi, False), (npi, True)} <= verdicts


# ---------------------------------------------------------------- cost


def test_validation_cost_per_resource_is_reported(capsys):
    for resource in EXAMPLES:  # warm: compile every expression once
        profiles.validate(resource)
    start = time.perf_counter()
    rounds = 3
    for _ in range(rounds):
        for resource in EXAMPLES:
            profiles.validate(resource)
    per_resource = (time.perf_counter() - start) / (rounds * len(EXAMPLES))
    with capsys.disabled():
        print(f"\nprofile validation: {per_resource * 1e6:.0f} µs per Plan-Net example")
    assert per_resource < 0.1  # a generous ceiling that a regression to uncompiled FHIRPath breaks


# ---------------------------------------------------------------- hostile shapes


def test_a_number_where_a_url_is_due_is_422_not_500():
    endpoint = {
        "resourceType": "Endpoint",
        "status": "active",
        "address": 5,
        "connectionType": {"code": "hl7-fhir-rest"},
        "payloadType": [{"text": "any"}],
    }
    with pytest.raises(InvalidResource):
        validate_resource("Endpoint", endpoint)


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "HealthcareService", "meta": "x", "category": [{"coding": [None, 3]}]},
        {"resourceType": "Group", "type": {"code": "x"}, "actual": True, "member": [[], "x"]},
        {"resourceType": "InsurancePlan", "name": "P", "plan": [{"type": [{"coding": "x"}]}]},
        {"resourceType": 7},
    ],
    ids=["meta-and-codings", "member-shapes", "coding-string", "type-number"],
)
def test_the_walker_survives_shapes_the_structural_pass_would_refuse(resource):
    """New types reach the walker directly in these tests: wrong shapes never raise."""
    assert isinstance(profiles.validate(resource), list)


def test_a_profile_of_another_type_is_refused():
    org = {
        "resourceType": "Organization",
        "name": "A",
        "meta": {"profile": [f"{PLAN_NET}plannet-Location"]},
    }
    assert rules(org) == [("plannet-Location: type", "meta.profile")]


def test_contained_resources_and_local_references():
    org = {
        "resourceType": "Organization",
        "name": "A",
        "partOf": {"reference": "#parent"},
        "contained": [{"resourceType": "Organization", "id": "parent", "name": "P"}],
    }
    assert rules(org) == []
    org["partOf"]["reference"] = "#elsewhere"
    assert rules(org) == [("ref-1", "Organization.partOf")]
    org["contained"][0]["meta"] = {"versionId": "3"}
    assert ("dom-4", "Organization") in rules(org)


def test_every_evaluated_constraint_compiles():
    profiles.warm()
    keys = set()
    for definition in profiles.definitions().values():
        for element in definition.by_id.values():
            for constraint in validator.evaluated_constraints(element):
                invariants.compiled(constraint["expression"])
                keys.add(constraint["key"])
    assert {"org-1", "org-2", "org-3", "ipn-1", "grp-1", "per-1", "cpt-2", "pd-1"} <= keys
    assert not keys & set(invariants.UNEVALUATED)
