"""Search parameters as data: loading, per-type splitting, and extraction by FHIRPath.

The oracle is fhirpathpy itself: for every loaded parameter, over the Plan-Net IG's own examples
and over generated directories, the direct accessors used for plain paths must select exactly
the elements (with the same types) that evaluating the expression with fhirpathpy selects.
"""

import json
from collections import Counter
from urllib.parse import parse_qsl

import pytest
from django.db import transaction

from directory import bulkload, storage
from directory.indexing import extract
from directory.models import DateIndex, UriIndex
from directory.registry import RESOURCES
from directory.search import SearchRequest, search
from directory.search.index import TABLES
from directory.searchparams import build_resources
from directory.searchparams.expressions import Term, split_union, term_for_base
from sampledata.generator import DirectoryGenerator
from tests import plannet

PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter/"


def generated(practitioners: int = 40, organizations: int = 6) -> list[dict]:
    generator = DirectoryGenerator(practitioners, organizations, seed=3)
    groups = [*generator.organization_groups(), *generator.practitioner_groups()]
    return [content for group in groups for _, content in group]


def as_multiset(elements) -> Counter:
    return Counter((type_name, json.dumps(value, sort_keys=True)) for type_name, value in elements)


PERIOD = "http://hl7.org/fhir/StructureDefinition/organization-period"
# Shapes neither corpus above has: extension values of several types, a primitive's extension,
# email and phone telecoms, Group characteristics (whose `value as X` only fhirpathpy reads).
HANDMADE = [
    {
        "resourceType": "Organization",
        "id": "h1",
        "name": "Acme",
        "_name": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]},
        "alias": ["A1", "A2"],
        "extension": [
            {"url": PERIOD, "valuePeriod": {"start": "2020-01-01"}},
            {"url": PERIOD, "valueDateTime": "2021-02-03"},
            {"url": "http://example.org/other", "valueString": "no"},
        ],
        "meta": {"tag": [{"system": "urn:t", "code": "x"}], "profile": ["http://example.org/p"]},
    },
    {
        "resourceType": "OrganizationAffiliation",
        "id": "h2",
        "telecom": [
            {"system": "email", "value": "a@example.org"},
            {"system": "phone", "value": "555-0100", "use": "work"},
            {"system": "email"},
        ],
        "period": {"start": "2020", "end": "2021-06"},
    },
    {
        "resourceType": "Group",
        "id": "h3",
        "type": "practitioner",
        "actual": True,
        "characteristic": [
            {
                "code": {"coding": [{"system": "urn:c", "code": "lang"}]},
                "valueCodeableConcept": {"coding": [{"system": "urn:l", "code": "es"}]},
                "exclude": False,
            },
            {"code": {"text": "accepting"}, "valueBoolean": True, "exclude": False},
            {"code": {"text": "age"}, "valueQuantity": {"value": 3}, "exclude": True},
        ],
        "member": [{"entity": {"reference": "Practitioner/p1"}}],
    },
    {
        "resourceType": "Subscription",
        "id": "s1",
        "status": "active",
        "reason": "Directory changes",
        "contact": [{"system": "email", "value": "ops@example.org"}],
        "criteria": "http://example.org/SubscriptionTopic/practitioner-change",
        "channel": {
            "type": "rest-hook",
            "endpoint": "https://subscriber.example.org/hook",
            "payload": "application/fhir+json",
        },
    },
]
CORPUS = {"plan-net": plannet.examples(), "generated": generated(), "handmade": HANDMADE}


def test_corpus_covers_the_new_types():
    types = {r["resourceType"] for r in CORPUS["plan-net"]}
    # Plan-Net has no Group example; SearchParameter is the custom parameters' admin type,
    # Subscription the clients' own (its example is handmade).
    assert types == set(RESOURCES) - {"Group", "SearchParameter", "Subscription"}


@pytest.mark.parametrize("corpus", sorted(CORPUS))
def test_fast_path_selects_what_fhirpath_selects(corpus):
    compared = 0
    for resource in CORPUS[corpus]:
        for param in RESOURCES[resource["resourceType"]].params.values():
            fast = as_multiset(param.elements(resource))
            oracle = as_multiset(param.engine_elements(resource))
            assert fast == oracle, (resource["id"], param.name, param.expression)
            compared += bool(oracle)
    assert compared > 10  # the comparison saw real values, not only empty selections


@pytest.mark.parametrize("corpus", sorted(CORPUS))
def test_index_rows_are_the_same_either_way(corpus):
    for resource in CORPUS[corpus]:
        rtype = resource["resourceType"]
        assert extract(rtype, resource) == extract(rtype, resource, engine=True), resource["id"]


def test_extraction_does_not_change_the_resource():
    for resource in CORPUS["plan-net"]:
        before = json.dumps(resource, sort_keys=True)
        extract(resource["resourceType"], resource, engine=True)
        assert json.dumps(resource, sort_keys=True) == before


def test_every_core_and_plan_net_term_takes_the_fast_path():
    # Definitions added later (NDH, custom) may use forms only fhirpathpy reads; these may not.
    sources = ("http://hl7.org/fhir/SearchParameter/", PLAN_NET)
    params = [p for rdef in RESOURCES.values() for p in rdef.params.values()]
    terms = [t for p in params if p.url.startswith(sources) for t in p.terms]
    assert len(terms) > 140
    assert [t.text for t in terms if not t.fast] == []
    network = RESOURCES["PractitionerRole"].params["network"]
    assert "where(url=" in network.expression


NDH = "http://hl7.org/fhir/us/ndh/StructureDefinition"
# Expression forms the NDH guide uses (HL7/fhir-us-ndh input/fsh), and forms only fhirpathpy reads.
EXPRESSION_FORMS = [
    f"HealthcareService.extension.where(url='{NDH}/base-ext-newpatients')"
    ".extension.where(url ='acceptingPatients').value.ofType(CodeableConcept)",
    f"HealthcareService.extension.where(url='{NDH}/base-ext-newpatients')"
    ".extension.where(url='fromNetwork').value.ofType(Reference)",
    f"extension('{NDH}/base-ext-verification-status').value",
    f"HealthcareService.extension('{NDH}/base-ext-newpatients').extension('acceptingPatients')",
    "HealthcareService.extension.where(url='http://example.org/rule').extension.value.ofType(code)",
    "HealthcareService.extension.where(url='http://example.org/rule').value.ofType(boolean)",
    "HealthcareService.name.ofType(string)",
    "HealthcareService.eligibility.code",
    "HealthcareService.telecom.where(system='phone').value",
    "HealthcareService.location.where(resolve() is Location)",
    "HealthcareService.location.where(resolve() is Organization)",
    "HealthcareService.extension.value.exists()",
    "HealthcareService.name.substring(1)",
]
SERVICE = {
    "resourceType": "HealthcareService",
    "id": "forms",
    "name": "Clinic",
    "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@b"}],
    "eligibility": [{"code": {"coding": [{"system": "urn:e", "code": "adult"}]}}],
    "location": [{"reference": "Location/x"}, {"reference": "https://x.org/fhir/Location/y"}],
    "extension": [
        {
            "url": f"{NDH}/base-ext-newpatients",
            "extension": [
                {"url": "acceptingPatients", "valueCodeableConcept": {"coding": [{"code": "yes"}]}},
                {"url": "fromNetwork", "valueReference": {"reference": "Organization/n"}},
            ],
        },
        {"url": f"{NDH}/base-ext-verification-status", "valueCodeableConcept": {"text": "ok"}},
        {"url": "http://example.org/rule", "valueBoolean": True},
        {"url": "http://example.org/rule", "extension": [{"url": "a", "valueCode": "c"}]},
    ],
}


@pytest.mark.parametrize("expression", EXPRESSION_FORMS)
def test_expression_forms_agree_with_fhirpath(expression):
    definition = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/form",
        "code": "form",
        "base": ["HealthcareService"],
        "type": "token",
        "expression": expression,
    }
    param = build_resources([definition], ["HealthcareService"])["HealthcareService"].params["form"]
    assert as_multiset(param.elements(SERVICE)) == as_multiset(param.engine_elements(SERVICE))
    uses_engine_only = ("resolve()", "exists()", "substring(")
    if "resolve() is Location" in expression:
        assert len(list(param.elements(SERVICE))) == 2
    assert param.fast == (not any(f in expression for f in uses_engine_only))


def test_every_plan_net_parameter_is_loaded_for_its_base():
    loaded = {(p.base, p.url) for rdef in RESOURCES.values() for p in rdef.params.values()}
    plan_net = {(base, url) for base, url in loaded if url.startswith(PLAN_NET)}
    assert len(plan_net) == 55


def test_plan_net_wins_over_core_for_the_same_code():
    name = RESOURCES["Organization"].params["name"]
    assert name.url == PLAN_NET + "organization-name"
    assert name.modifiers == ("exact", "contains")
    partof = RESOURCES["Organization"].params["partof"]
    assert partof.chain == ("name", "address", "type")


def test_precedence_does_not_depend_on_file_order():
    core = {
        "resourceType": "SearchParameter",
        "url": "http://hl7.org/fhir/SearchParameter/Organization-name",
        "code": "name",
        "base": ["Organization"],
        "type": "string",
        "expression": "Organization.name",
    }
    guide = {**core, "url": PLAN_NET + "organization-name", "expression": "Organization.alias"}
    for order in ([core, guide], [guide, core]):
        params = build_resources(order, ["Organization"])["Organization"].params
        assert params["name"].expression == "Organization.alias"


def test_multi_base_expressions_are_split_per_type():
    email = RESOURCES["PractitionerRole"].params["email"]
    assert email.expression == "PractitionerRole.telecom.where(system='email')"
    assert RESOURCES["Practitioner"].params["address"].expression == "Practitioner.address"


def test_resource_level_parameters_apply_to_every_type():
    for rtype, rdef in RESOURCES.items():
        assert rdef.params["_tag"].expression == f"{rtype}.meta.tag"


def test_reference_targets_are_supported_types_only():
    member = RESOURCES["Group"].params["member"]
    assert set(member.targets) == {"Practitioner", "PractitionerRole", "Group"}
    for rdef in RESOURCES.values():
        for param in rdef.reference_params:
            assert param.targets and set(param.targets) <= set(RESOURCES)


def test_union_split_respects_parentheses_and_strings():
    text = "(Group.a as X) | Group.b.where(c='x|y') | name"
    assert split_union(text) == ["(Group.a as X)", "Group.b.where(c='x|y')", "name"]
    assert term_for_base("(Group.a as X)", "Group") == "Group.a.ofType(X)"
    assert term_for_base("Patient.name", "Practitioner") is None
    assert term_for_base("Resource.meta.tag", "Endpoint") == "Endpoint.meta.tag"


def test_extension_parameters_read_the_extension_value():
    service = next(r for r in CORPUS["plan-net"] if r["id"] == "BurrClinicServices")
    rows = extract("HealthcareService", service)
    method = [(s, c) for p, s, c in rows.tokens if p == "delivery-method"]
    assert method == [
        ("http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/DeliveryMethodCS", "physical")
    ]
    role = next(
        r
        for r in CORPUS["plan-net"]
        if r["resourceType"] == "PractitionerRole"
        and any("network-reference" in e["url"] for e in r.get("extension", []))
    )
    networks = [r.type for p, r in extract("PractitionerRole", role).references if p == "network"]
    assert networks and set(networks) == {"Organization"}


def test_a_bad_expression_fails_at_load_time():
    for bad in ("Organization.name.where(", "Organization.name +", "%%%"):
        with pytest.raises(ValueError, match="cannot be evaluated"):
            Term("Organization", bad)


def test_group_values_of_each_type_are_indexed():
    rows = extract("Group", HANDMADE[2])
    assert {(s, c) for p, s, c in rows.tokens if p == "value"} == {("urn:l", "es"), ("", "true")}


# ---------------------------------------------------------------- stored and searched


@pytest.fixture
def plan_net(db, settings):
    """Every Plan-Net example stored with its id (in one transaction: they refer to each other).

    The examples give one NPI to several records, so NPI uniqueness is off (FHIR_UNIQUE_NPI)."""
    settings.FHIR_UNIQUE_NPI = False
    examples = CORPUS["plan-net"]
    with transaction.atomic(), storage.deferred_integrity():
        for resource in examples:
            storage.update(resource["resourceType"], resource["id"], resource)
    return examples


def ids(resource_type: str, query: str) -> set[str]:
    pairs = [*parse_qsl(query), ("_count", "100")]
    result = search(SearchRequest(resource_type, pairs, strict=True))
    return {e.content["id"] for e in result.entries if e.mode == "match"}


def test_every_plan_net_example_stores_with_its_id(plan_net):
    for resource in plan_net:
        assert storage.read(resource["resourceType"], resource["id"]).logical_id == resource["id"]


def test_extension_and_new_type_parameters_search(plan_net):
    assert "BurrClinicServices" in ids("HealthcareService", "delivery-method=physical")
    assert ids("HealthcareService", "delivery-method=no-such-method") == set()
    networks = ids("PractitionerRole", "network=Organization/AcmeofCTStdNet")
    assert networks and networks <= {r["id"] for r in plan_net}
    assert ids("InsurancePlan", "name=acme") == {"AcmeQHPBronze", "AcmeQHPGold"}


def test_bulk_load_writes_the_rows_extraction_gives(db, settings):
    settings.FHIR_UNIQUE_NPI = False
    examples = CORPUS["plan-net"]
    bulkload.bulk_load([(r["resourceType"], r) for r in examples], check_references=False)
    for table in TABLES:
        model = table.model
        stored = model.objects.values_list("resource__logical_id", "param", *table.columns)
        expected = [
            (r["id"], *row) for r in examples for row in extract(r["resourceType"], r).rows[model]
        ]
        assert sorted(stored) == sorted(expected), model.__name__
    assert DateIndex.objects.exists() and UriIndex.objects.exists()


def test_sort_by_name_on_the_new_types(plan_net):
    result = search(SearchRequest("HealthcareService", [("_sort", "name"), ("_count", "50")]))
    names = [e.content.get("name", "") for e in result.entries]
    assert len(names) == 10 and names == sorted(names, key=str.casefold)
    assert RESOURCES["InsurancePlan"].sort_name_param == "name"
    assert RESOURCES["Group"].sort_name_param is None  # core defines no Group name parameter


def test_the_engine_keeps_every_extension_with_the_url():
    """fhirpathpy 2.2's `extension(url)` returns the first match only; the engine path spells it
    `extension.where(url=...)`, so it agrees with the direct accessor and the specification."""
    from directory.searchparams.expressions import Term

    content = {
        "resourceType": "Organization",
        "extension": [
            {"url": "urn:u", "valueString": "a"},
            {"url": "urn:other", "valueString": "b"},
            {"url": "urn:u", "valueString": "c"},
        ],
    }
    term = Term("Organization", "Organization.extension('urn:u').value.ofType(string)")
    assert [v for _, v in term.engine_elements(content)] == ["a", "c"]
    assert [v for _, v in term.elements(content)] == ["a", "c"]
