"""Chained parameters, `_has`, `_include:iterate` and `_include=*` over the API: exact id sets.

The directory below is small enough to work every answer out by hand:

    org-acme "Acme Health" (prov, Springfield) <- partOf - org-east "Acme East" (dept, Shelbyville)
    org-other "Other Care" (prov, Capital City); ep-acme / ep-other managed by acme / other
    loc-spring (acme, Springfield) <- partOf - loc-wing (east); loc-cap (other, Capital City)
    role-1 susi @ acme, loc-wing, ep-acme     role-2 bob @ other, loc-cap
    role-3 susi @ east, loc-cap               role-4 bob, no organization, loc-spring
"""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection

from directory import storage
from directory.registry import RESOURCES
from directory.search.chains import max_hops
from directory.search.reach import link_targets, reach
from tests.factories import FACTORIES
from tests.fhirapi.conftest import outcome_issue

pytestmark = pytest.mark.django_db

PROV = "http://terminology.hl7.org/CodeSystem/organization-type"
V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def ref(target: str) -> dict:
    return {"reference": target}


def _org(oid, name, code, city, **more):
    kind = [{"coding": [{"system": PROV, "code": code}]}]
    address = [{"city": city, "state": "IL"}]
    return FACTORIES["Organization"].create(id=oid, name=name, type=kind, address=address, **more)


def _location(lid, org, city, **more):
    more.setdefault("type", [{"coding": [{"system": V3_ROLE, "code": "HOSP"}]}])
    address = {"city": city, "state": "IL", "postalCode": "62701"}
    return FACTORIES["Location"].create(
        id=lid, managingOrganization=ref(org), address=address, **more
    )


@pytest.fixture
def directory(db):
    _org("org-acme", "Acme Health", "prov", "Springfield")
    _org("org-east", "Acme East", "dept", "Shelbyville", partOf=ref("Organization/org-acme"))
    _org("org-other", "Other Care", "prov", "Capital City")
    FACTORIES["Endpoint"].create(id="ep-acme", managingOrganization=ref("Organization/org-acme"))
    FACTORIES["Endpoint"].create(id="ep-other", managingOrganization=ref("Organization/org-other"))
    # The endpoint names its organization, so the organization gets its endpoint once both exist.
    _org("org-acme", "Acme Health", "prov", "Springfield", endpoint=[ref("Endpoint/ep-acme")])
    _location("loc-spring", "Organization/org-acme", "Springfield")
    _location("loc-wing", "Organization/org-east", "Springfield", partOf=ref("Location/loc-spring"))
    _location("loc-cap", "Organization/org-other", "Capital City")
    FACTORIES["Practitioner"].create(id="pr-susi", name=[{"family": "Smith", "given": ["Susi"]}])
    FACTORIES["Practitioner"].create(id="pr-bob", name=[{"family": "Jones", "given": ["Bob"]}])
    roles = [
        ("role-1", "pr-susi", "org-acme", "loc-wing", "ep-acme"),
        ("role-2", "pr-bob", "org-other", "loc-cap", None),
        ("role-3", "pr-susi", "org-east", "loc-cap", None),
        ("role-4", "pr-bob", None, "loc-spring", None),
    ]
    for rid, practitioner, org, location, endpoint in roles:
        FACTORIES["PractitionerRole"].create(
            id=rid,
            practitioner=ref(f"Practitioner/{practitioner}"),
            location=[ref(f"Location/{location}")],
            **({"organization": ref(f"Organization/{org}")} if org else {}),
            **({"endpoint": [ref(f"Endpoint/{endpoint}")]} if endpoint else {}),
        )


def entries(api, query: str, mode: str = "match", **headers) -> set[str]:
    response = api.get(f"/fhir/{query}", **headers)
    assert response.status_code == 200, response.content
    bundle = response.json()
    return {
        f"{e['resource']['resourceType']}/{e['resource'].get('id')}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    }


def ids(api, query: str, **headers) -> set[str]:
    return {full.partition("/")[2] for full in entries(api, query, **headers)}


def refused(api, query: str, *words: str, **headers) -> dict:
    response = api.get(f"/fhir/{query}", **headers)
    assert response.status_code == 400, response.content
    issue = outcome_issue(response)
    for word in words:
        assert word in issue["diagnostics"], issue
    return issue


# ---------------------------------------------------------------- forward chains


@pytest.mark.parametrize(
    "query, expected",
    [
        ("PractitionerRole?practitioner.name=susi", {"role-1", "role-3"}),
        ("PractitionerRole?practitioner:Practitioner.name=bob", {"role-2", "role-4"}),
        ("PractitionerRole?practitioner.name:exact=Susi", {"role-1", "role-3"}),
        ("PractitionerRole?practitioner.name:exact=susi", set()),
        ("PractitionerRole?practitioner.family:contains=ONE", {"role-2", "role-4"}),
        ("PractitionerRole?practitioner.name=susi,bob", {"role-1", "role-2", "role-3", "role-4"}),
        ("PractitionerRole?practitioner._id=pr-bob", {"role-2", "role-4"}),
        ("PractitionerRole?organization.type=dept", {"role-3"}),
        ("PractitionerRole?organization.type:not=dept", {"role-1", "role-2"}),
        ("PractitionerRole?location.address-city=capital", {"role-2", "role-3"}),
        # Multi-hop: role -> location -> managing organization.
        ("PractitionerRole?location.organization.name=acme", {"role-1", "role-4"}),
        ("PractitionerRole?location.organization:Organization.name=other", {"role-2", "role-3"}),
        ("PractitionerRole?location.partof.organization.name=acme", {"role-1"}),
        ("PractitionerRole?location.organization.partof.name=acme", {"role-1"}),
        ("PractitionerRole?location.organization=Organization/org-other", {"role-2", "role-3"}),
        ("PractitionerRole?location.partof:missing=false", {"role-1"}),
        ("Organization?partof.name=acme", {"org-east"}),
        ("Organization?endpoint.organization.name=acme", {"org-acme"}),
        ("Location?organization.partof.address-city=springfield", {"loc-wing"}),
        ("Location?partof.organization.name=acme%20health", {"loc-wing"}),
        ("Endpoint?organization.name=other", {"ep-other"}),
        # A chain is one more condition: ANDed with the rest.
        ("PractitionerRole?practitioner.name=susi&location.address-city=spring", {"role-1"}),
        ("PractitionerRole?practitioner.name=nobody", set()),
    ],
)  # fmt: skip
def test_forward_chain(api, directory, query, expected):
    assert ids(api, query) == expected


def test_a_deleted_resource_no_longer_matches_a_chain(api, directory):
    # A target cannot be deleted while referenced; the referrer can.
    storage.delete("PractitionerRole", "role-3")
    assert ids(api, "PractitionerRole?organization.type=dept") == set()


def _pages(api, query: str, relation: str) -> list[list[str]]:
    """The match ids of every page from `query` on, following `relation` links."""
    bundle, pages = api.get(f"/fhir/{query}").json(), []
    while True:
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        if relation not in links:
            return pages
        bundle = api.get("/fhir/" + links[relation].partition("/fhir/")[2]).json()


def test_chain_pages_hold_each_match_once_in_both_directions(api, directory):
    # role-1 now reaches the cities through two locations: still one match, on one page.
    FACTORIES["PractitionerRole"].create(
        id="role-1",
        practitioner=ref("Practitioner/pr-susi"),
        location=[ref("Location/loc-cap"), ref("Location/loc-wing")],
    )
    FACTORIES["PractitionerRole"].create(id="role-5", practitioner=ref("Practitioner/pr-bob"))
    storage.delete("PractitionerRole", "role-2")
    query = "PractitionerRole?location.address-city=capital,springfield&_count=2"
    forward = _pages(api, query, "next")
    assert [len(page) for page in forward] == [2, 1]
    matched = [rid for page in forward for rid in page]
    assert sorted(matched) == ["role-1", "role-3", "role-4"]
    # Pages come in storage order; walking back from the last page gives them again, reversed.
    last = forward[-1]
    bundle = api.get(f"/fhir/{query}").json()
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    backward = _pages(api, next_url.partition("/fhir/")[2], "previous")
    assert backward == [last, forward[0]]


def test_chain_appears_in_the_self_link(api, directory):
    bundle = api.get("/fhir/PractitionerRole?practitioner.name=susi").json()
    (self_link,) = [link["url"] for link in bundle["link"] if link["relation"] == "self"]
    assert "practitioner.name=susi" in self_link


@pytest.mark.parametrize(
    "query, words",
    [
        ("PractitionerRole?practitioner:missing.name=x", ["missing", "chain link"]),
        ("PractitionerRole?practitioner:exact.name=x", ["exact", "chain link"]),
        ("PractitionerRole?practitioner:Organization.name=x", ["Organization", "not a target"]),
        ("PractitionerRole?practitioner.name:exat=x", ["exat"]),
        ("PractitionerRole?practitioner.colour=x", ["colour"]),
        ("PractitionerRole?colour.name=x", ["colour"]),
        ("Organization?name.family=x", ["string parameter", "cannot be chained"]),
        ("PractitionerRole?practitioner.name:text=x", ["text", "not supported"]),
        ("PractitionerRole?organization._has:Endpoint:organization:status=active", ["_has"]),
        ("Organization?partof.partof.partof.partof.partof.partof.partof.partof.name=x", ["deep"]),
    ],
)  # fmt: skip
def test_bad_chains_are_400(api, directory, query, words):
    refused(api, query, *words)


def test_an_unknown_chain_is_ignored_and_reported_when_lenient(api, directory):
    lenient = {"HTTP_PREFER": "handling=lenient"}
    everything = {"role-1", "role-2", "role-3", "role-4"}
    assert ids(api, "PractitionerRole?practitioner.colour=x", **lenient) == everything
    bundle = api.get("/fhir/PractitionerRole?practitioner.colour=x", **lenient).json()
    (outcome,) = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "colour" in outcome["resource"]["issue"][0]["diagnostics"]


# ---------------------------------------------------------------- _has


@pytest.mark.parametrize(
    "query, expected",
    [
        ("Organization?_has:PractitionerRole:organization:practitioner=Practitioner/pr-susi",
         {"org-acme", "org-east"}),
        ("Organization?_has:PractitionerRole:organization:practitioner=pr-susi,pr-bob",
         {"org-acme", "org-east", "org-other"}),
        ("Organization?_has:PractitionerRole:organization:specialty=207R00000X",
         {"org-acme", "org-east", "org-other"}),
        ("Practitioner?_has:PractitionerRole:practitioner:organization=Organization/org-other",
         {"pr-bob"}),
        ("Location?_has:PractitionerRole:location:practitioner.name=susi", {"loc-wing", "loc-cap"}),
        ("Practitioner?_has:PractitionerRole:practitioner:location.organization.name=acme",
         {"pr-susi", "pr-bob"}),
        ("Practitioner?_has:PractitionerRole:practitioner:organization:missing=true", {"pr-bob"}),
        ("Organization?_has:Organization:partof:name=acme", {"org-acme"}),
        ("Organization?_has:Endpoint:organization:_id=ep-other", {"org-other"}),
        # Nested: organizations managing a location where bob works.
        ("Organization?_has:Location:organization:_has:PractitionerRole:location:"
         "practitioner=Practitioner/pr-bob", {"org-acme", "org-other"}),
        ("Organization?_has:Location:organization:_has:Location:partof:"
         "_has:PractitionerRole:location:practitioner.name=susi", {"org-acme"}),
        ("Organization?_has:Organization:partof:_has:PractitionerRole:organization:"
         "practitioner=pr-susi", {"org-acme"}),
        ("Organization?_has:PractitionerRole:organization:practitioner.name=nobody", set()),
    ],
)  # fmt: skip
def test_has(api, directory, query, expected):
    name = query.partition("?")[2].partition("=")[0]
    if name.count("_has:") + name.rpartition(":")[2].count(".") > max_hops():
        refused(api, query, "too deep")  # SQLite's bound
        return
    assert ids(api, query) == expected


def test_has_counts_only_live_referrers(api, directory):
    storage.delete("PractitionerRole", "role-2")
    query = "Organization?_has:PractitionerRole:organization:practitioner=pr-bob"
    assert ids(api, query) == set()


@pytest.mark.parametrize(
    "query, words",
    [
        ("Organization?_has:Patient:organization:name=x", ["Patient"]),
        ("Organization?_has:PractitionerRole:practitioner:active=true", ["cannot refer"]),
        ("Organization?_has:PractitionerRole:specialty:active=true", ["no reference parameter"]),
        ("Organization?_has:PractitionerRole:organization=x", ["_has:Type:reference:parameter"]),
        ("Organization?_has:PractitionerRole:organization:colour=x", ["colour"]),
        ("Organization?_has:PractitionerRole:organization:active:exat=true", ["exat"]),
        ("Organization?" + "_has:Organization:partof:" * 8 + "name=x", ["deep"]),
    ],
)  # fmt: skip
def test_bad_has_is_400(api, directory, query, words):
    refused(api, query, *words)


def test_has_nested_up_to_the_bound_is_answered(api, directory):
    query = "Organization?" + "_has:Organization:partof:" * max_hops() + "name=x"
    assert ids(api, query) == set()
    refused(api, "Organization?_has:Organization:partof:" + query.partition("?")[2], "too deep")


# ---------------------------------------------------------------- includes


@pytest.mark.parametrize(
    "query, included",
    [
        ("PractitionerRole?_id=role-1&_include=PractitionerRole:location"
         "&_include:iterate=Location:partof&_include:iterate=Location:organization",
         {"Location/loc-wing", "Location/loc-spring", "Organization/org-east",
          "Organization/org-acme"}),
        # Not iterated, Location:organization applies to the matches only: nothing to follow.
        ("PractitionerRole?_id=role-1&_include=PractitionerRole:location"
         "&_include:iterate=Location:partof",
         {"Location/loc-wing", "Location/loc-spring"}),
        ("Organization?_id=org-acme&_revinclude:iterate=Organization:partof"
         "&_revinclude:iterate=PractitionerRole:organization",
         {"Organization/org-east", "PractitionerRole/role-1", "PractitionerRole/role-3"}),
        ("Practitioner?_id=pr-susi&_revinclude=PractitionerRole:practitioner"
         "&_include:iterate=PractitionerRole:organization",
         {"PractitionerRole/role-1", "PractitionerRole/role-3", "Organization/org-acme",
          "Organization/org-east"}),
        ("PractitionerRole?_id=role-1&_include=*",
         {"Practitioner/pr-susi", "Organization/org-acme", "Location/loc-wing",
          "Endpoint/ep-acme"}),
        ("PractitionerRole?_id=role-1&_include=PractitionerRole:*",
         {"Practitioner/pr-susi", "Organization/org-acme", "Location/loc-wing",
          "Endpoint/ep-acme"}),
        ("PractitionerRole?_id=role-1&_include:iterate=*",
         {"Practitioner/pr-susi", "Organization/org-acme", "Location/loc-wing",
          "Endpoint/ep-acme", "Location/loc-spring", "Organization/org-east"}),
        ("Organization?_id=org-east&_include:iterate=Organization:partof"
         "&_include:iterate=Organization:endpoint&_include:iterate=Endpoint:organization",
         {"Organization/org-acme", "Endpoint/ep-acme"}),
    ],
)  # fmt: skip
def test_iterated_includes(api, directory, query, included):
    assert entries(api, query, "include") == included


def test_iterate_stops_at_the_include_cap(api, directory, settings):
    settings.FHIR_MAX_INCLUDES = 3
    found = entries(api, "PractitionerRole?_id=role-1&_include:iterate=*", "include")
    assert len(found) == 3


def test_iterate_ends_on_a_reference_cycle(api, directory):
    _org("org-acme", "Acme Health", "prov", "Springfield", partOf=ref("Organization/org-east"))
    found = entries(
        api, "Organization?_id=org-acme&_include:iterate=Organization:partof", "include"
    )
    assert found == {"Organization/org-east"}


def test_iterate_is_kept_in_the_self_link(api, directory):
    query = "PractitionerRole?_id=role-1&_include:iterate=Location:partof"
    bundle = api.get(f"/fhir/{query}").json()
    (self_link,) = [link["url"] for link in bundle["link"] if link["relation"] == "self"]
    assert "_include%3Aiterate=Location%3Apartof" in self_link or "_include:iterate" in self_link


@pytest.mark.parametrize(
    "query, words",
    [
        ("PractitionerRole?_include=Location:partof", ["must start with PractitionerRole"]),
        ("PractitionerRole?_include:iterate=Location:name", ["no reference parameter"]),
        ("PractitionerRole?_revinclude=*", ["_revinclude"]),
        ("PractitionerRole?_include:recurse=PractitionerRole:location", ["recurse"]),
        ("Organization?_revinclude:iterate=PractitionerRole:practitioner:Organization",
         ["cannot refer"]),
    ],
)  # fmt: skip
def test_bad_includes_are_400(api, directory, query, words):
    refused(api, query, *words)


# ---------------------------------------------------------------- chains the IG declares

# SearchParameter.chain of the Plan-Net 1.2.0 package (HL7, CC0): (base, parameter) -> the
# parameters a client may chain after it. Declared on types this server does not support yet
# (HealthcareService, ...) they are skipped until the registry has them; a registry that carries
# `SearchParam.chain` adds its own declarations (NDH, custom) to the list.
PLAN_NET_CHAINS = {
    ("Endpoint", "organization"): ("name", "address", "partof", "type"),
    ("HealthcareService", "endpoint"): ("organization",),
    ("HealthcareService", "location"): (
        "address", "address-postalcode", "address-city", "address-state", "organization", "type"
    ),
    ("HealthcareService", "organization"): ("name", "address", "partof", "type"),
    ("InsurancePlan", "administered-by"): ("name", "partof"),
    ("InsurancePlan", "owned-by"): ("name", "partof"),
    ("Location", "endpoint"): ("organization",),
    ("Location", "organization"): ("name", "address", "partof", "type"),
    ("Location", "partof"): ("type", "address", "organization"),
    ("Organization", "endpoint"): ("organization",),
    ("Organization", "partof"): ("name", "address", "type"),
    ("OrganizationAffiliation", "endpoint"): ("organization",),
    ("OrganizationAffiliation", "location"): (
        "address", "address-postalcode", "address-city", "address-state", "organization", "type"
    ),
    ("OrganizationAffiliation", "network"): ("name", "partof"),
    ("OrganizationAffiliation", "participating-organization"): (
        "type", "address", "name", "partof"
    ),
    ("OrganizationAffiliation", "primary-organization"): ("type", "address", "name", "partof"),
    ("OrganizationAffiliation", "service"): ("service-category", "organization", "location"),
    ("PractitionerRole", "endpoint"): ("organization",),
    ("PractitionerRole", "location"): (
        "address", "address-postalcode", "address-city", "address-state", "organization", "type"
    ),
    ("PractitionerRole", "network"): ("name", "address", "partof", "type"),
    ("PractitionerRole", "organization"): ("name", "address", "partof", "type"),
    ("PractitionerRole", "practitioner"): ("name",),
    ("PractitionerRole", "service"): ("service-category", "organization", "location"),
}  # fmt: skip


def _declared_chains() -> list[tuple[str, str, str]]:
    declared = {(b, p, c) for (b, p), chained in PLAN_NET_CHAINS.items() for c in chained}
    for rdef in RESOURCES.values():
        for param in rdef.reference_params:
            declared |= {(rdef.type, param.name, c) for c in getattr(param, "chain", ()) or ()}
    return sorted(declared)


# A value that some resources of the fixture directory meet and others do not.
_VALUES = {
    "name": "acme",
    "address": "springfield",
    "address-city": "springfield",
    "address-state": "IL",
    "address-postalcode": "62701",
    ("Organization", "type"): "dept",
    ("Location", "type"): "HOSP",
    "partof": "Organization/org-acme",
    ("Location", "partof"): "Location/loc-spring",
    "organization": "Organization/org-acme",
}


@pytest.mark.parametrize("base, param_name, chained", _declared_chains())
def test_every_declared_chain_is_its_two_searches_composed(
    api, directory, base, param_name, chained
):
    """`B?p.c=v` returns exactly `B?p=<the T/id that T?c=v returns>`: each half tested alone."""
    param = RESOURCES.get(base) and RESOURCES[base].params.get(param_name)
    if not param:
        pytest.skip(f"{base}:{param_name} is not in the registry yet")
    targets = link_targets(param, "", chained)
    if not targets:
        pytest.skip(f"no target of {base}:{param_name} has '{chained}' yet")
    value = _VALUES.get((targets[0], chained), _VALUES.get(chained, "x"))
    pointed: set[str] = set()
    for target in targets:
        pointed |= entries(api, f"{target}?{chained}={value}")
    expected = ids(api, f"{base}?{param_name}={','.join(sorted(pointed))}") if pointed else set()
    assert ids(api, f"{base}?{param_name}.{chained}={value}") == expected


def test_declared_chains_are_mostly_not_empty_here(api, directory):
    """Guards the test above against a fixture where every composed answer is empty.

    Only the types this fixture populates count; tests/conformance composes every declared chain
    over the Plan-Net examples, new types included."""
    populated = ("Organization", "Practitioner", "PractitionerRole", "Location", "Endpoint")
    answered = [
        ids(api, f"{b}?{p}.{c}={_VALUES.get(c, 'x')}")
        for b, p, c in _declared_chains()
        if b in populated and p in RESOURCES[b].params and isinstance(_VALUES.get(c), str)
    ]
    assert sum(1 for found in answered if found) >= len(answered) // 2


@pytest.fixture
def untyped_partof(monkeypatch):
    """Organization:partof declared with no target (any type), as InsurancePlan:network is."""
    params = RESOURCES["Organization"].params
    monkeypatch.setitem(params, "partof", dataclasses.replace(params["partof"], targets=()))


def test_an_untyped_reference_chains_into_every_type_with_the_parameter(
    api, directory, untyped_partof
):
    # Organization, Practitioner, Location, Endpoint, HealthcareService, InsurancePlan and
    # SearchParameter all have `name`; only organizations are pointed at, and the union is the
    # answer.
    assert ids(api, "Organization?partof.name=acme") == {"org-east"}
    assert ids(api, "Organization?partof:Location.name=acme") == set()
    reached = reach("Organization", [("partof.name", "acme")]).matched
    assert reached == {
        "Organization",
        "Practitioner",
        "Location",
        "Endpoint",
        "HealthcareService",
        "InsurancePlan",
        "SearchParameter",
    }


def test_an_untyped_chain_fanning_out_too_far_is_400(api, directory, untyped_partof, monkeypatch):
    params = RESOURCES["Location"].params
    monkeypatch.setitem(params, "partof", dataclasses.replace(params["partof"], targets=()))
    # Each partof continues into Organization and Location, the last into the 7 types with a
    # name: 2 + 2*7 subqueries fit the budget (32), 2 + 4 + 4*7 do not (SQLite, 12: 7 fit,
    # 2 + 2*7 do not).
    fits, too_many = "partof.partof.name", "partof.partof.partof.name"
    if connection.vendor == "sqlite":
        fits, too_many = "partof.name", fits
    assert ids(api, f"Organization?{fits}=acme") <= {"org-east"}  # answered, not refused
    refused(api, f"Organization?{too_many}=x", "too many types")
