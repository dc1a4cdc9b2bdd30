"""Search result parameters: _count, _sort, _total, _summary, _elements, _include, _revinclude."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory import storage
from directory.errors import InvalidRequest
from directory.registry import OWNED_TYPES, RESOURCES, search_includes, search_revincludes
from directory.search import SUBSETTED, SearchRequest, search
from tests.directory.test_search_filters import REFERENCE_PARAMS, make_link
from tests.factories import (
    FACTORIES,
    EndpointFactory,
    OrganizationFactory,
    PractitionerFactory,
    PractitionerRoleFactory,
)

pytestmark = pytest.mark.django_db


def run(rtype: str, *pairs, strict: bool = False):
    return search(SearchRequest(rtype, list(pairs), strict=strict))


def match_ids(result) -> list[str]:
    return [e.content["id"] for e in result.entries if e.mode == "match"]


def include_ids(result) -> set[str]:
    return {
        f"{e.row.resource_type}/{e.content['id']}" for e in result.entries if e.mode == "include"
    }


# ---------------------------------------------------------------- _count and _total


def test_default_count_and_total(settings):
    settings.FHIR_DEFAULT_COUNT = 3
    for _ in range(5):
        OrganizationFactory.create()
    result = run("Organization")
    assert len(result.entries) == 3 and result.total is None and result.next_params
    assert result.previous_params is None and result.first_params == result.self_params == []


def test_count_is_capped_silently(settings):
    settings.FHIR_MAX_COUNT = 4
    for _ in range(6):
        OrganizationFactory.create()
    result = run("Organization", ("_count", "1000"), strict=True)
    assert len(result.entries) == 4 and result.ignored == []
    assert ("_count", "4") in result.self_params


def test_count_zero_gives_only_the_total():
    for _ in range(3):
        OrganizationFactory.create()
    result = run("Organization", ("_count", "0"))
    assert result.entries == [] and result.total == 3 and result.next_params is None


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "²", "1e3"])
def test_bad_count_is_400(value):
    with pytest.raises(InvalidRequest, match="_count"):
        run("Organization", ("_count", value))


def test_total_modes():
    for _ in range(3):
        OrganizationFactory.create()
    assert run("Organization", ("_total", "none")).total is None
    assert run("Organization", ("_total", "accurate"), ("_count", "1")).total == 3
    estimate = run("Organization", ("_total", "estimate"), ("_count", "1")).total
    assert isinstance(estimate, int) and estimate >= 0
    with pytest.raises(InvalidRequest, match="_total"):
        run("Organization", ("_total", "exact"))


def test_default_total_only_when_the_page_holds_every_match(settings):
    for _ in range(3):
        OrganizationFactory.create()
    assert run("Organization", ("_count", "3")).total == 3  # known without counting
    OrganizationFactory.create()
    assert run("Organization", ("_count", "3")).total is None  # never a guess, never counted
    assert run("Organization", ("_count", "1"), ("_total", "accurate")).total == 4
    assert run("Organization", ("_count", "1"), ("_total", "estimate")).total is not None


def test_count_zero_counts_exactly_up_to_the_limit_then_leaves_it_out(settings):
    settings.FHIR_TOTAL_EXACT_LIMIT = 3
    for _ in range(3):
        OrganizationFactory.create()
    assert run("Organization", ("_count", "0")).total == 3
    OrganizationFactory.create()
    assert run("Organization", ("_count", "0")).total is None
    assert run("Organization", ("_count", "1"), ("_total", "accurate")).total == 4
    assert run("Organization", ("_summary", "count")).total == 4
    assert run("Organization", ("_count", "10")).total == 4  # the whole result was on the page


def test_a_page_without_total_asked_runs_no_count(settings):
    for _ in range(4):
        OrganizationFactory.create()
    with CaptureQueriesContext(connection) as queries:
        result = run("Organization", ("_count", "1"))
    assert result.next_params  # paging works without a total
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_count_zero_reads_at_most_limit_plus_one_matches(settings):
    settings.FHIR_TOTAL_EXACT_LIMIT = 2
    for _ in range(4):
        OrganizationFactory.create()
    with CaptureQueriesContext(connection) as queries:
        run("Organization", ("_count", "0"))
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "LIMIT 3" in counts[0]


def test_sorted_total_comes_from_the_snapshot_above_the_limit(settings):
    settings.FHIR_TOTAL_EXACT_LIMIT = 2
    for _ in range(4):
        OrganizationFactory.create()
    assert run("Organization", ("_sort", "name"), ("_count", "1")).total == 4


def test_summary_count():
    OrganizationFactory.create(name="Alpha")
    OrganizationFactory.create(name="Beta")
    result = run("Organization", ("_summary", "count"), ("name", "alp"))
    assert result.summary_count and result.entries == [] and result.total == 1


# ---------------------------------------------------------------- _sort


def _set_names(names):
    return [OrganizationFactory.create(name=n)["id"] for n in names]


def test_sort_by_name_both_directions():
    ids = _set_names(["Charlie", "alpha", "Bravo"])
    assert match_ids(run("Organization", ("_sort", "name"))) == [ids[1], ids[2], ids[0]]
    assert match_ids(run("Organization", ("_sort", "-name"))) == [ids[0], ids[2], ids[1]]


def test_sort_by_id_and_last_updated():
    a = OrganizationFactory.create(id="b-org")
    b = OrganizationFactory.create(id="a-org")
    c = OrganizationFactory.create(id="c-org")
    assert match_ids(run("Organization", ("_sort", "_id"))) == ["a-org", "b-org", "c-org"]
    assert match_ids(run("Organization", ("_sort", "-_id"))) == ["c-org", "b-org", "a-org"]
    assert match_ids(run("Organization", ("_sort", "_lastUpdated"))) == [a["id"], b["id"], c["id"]]
    storage.update("Organization", a["id"], {**a, "name": "touched"})
    assert match_ids(run("Organization", ("_sort", "-_lastUpdated"))) == [
        a["id"],
        c["id"],
        b["id"],
    ]


def test_sort_combination_breaks_ties():
    first = _set_names(["Same", "Same", "Other"])
    result = run("Organization", ("_sort", "name,-_id"))
    assert match_ids(result) == [first[2], *sorted(first[:2], reverse=True)]
    assert ("_sort", "name,-_id") in result.self_params


@pytest.mark.parametrize("value", ["family", "_lastupdated", "name,bogus", "+name"])
def test_bad_sort_is_400(value):
    with pytest.raises(InvalidRequest, match="_sort"):
        run("Organization", ("_sort", value))


def test_sort_by_name_needs_a_sort_name():
    with pytest.raises(InvalidRequest, match="name"):
        run("PractitionerRole", ("_sort", "name"))


# ---------------------------------------------------------------- _summary and _elements


def _tags(content):
    return content["meta"].get("tag", [])


def test_elements_keeps_mandatory_elements_and_tags_subsetted():
    org = OrganizationFactory.create(text={"status": "generated", "div": "<div>x</div>"})
    result = run("Organization", ("_elements", "name,active"))
    content = result.entries[0].content
    assert set(content) == {"resourceType", "id", "meta", "name", "active"}
    assert SUBSETTED in _tags(content) and content["meta"]["versionId"] == "1"
    assert content["name"] == org["name"]
    assert ("_elements", "active,name") in result.self_params


def test_elements_applies_to_matches_only():
    org = OrganizationFactory.create()
    role = PractitionerRoleFactory.create(organization={"reference": f"Organization/{org['id']}"})
    result = run("PractitionerRole", ("_elements", "active"), ("_include", "PractitionerRole:*"))
    by_mode = {e.mode: e.content for e in result.entries}
    assert set(by_mode["match"]) == {"resourceType", "id", "meta", "active"}
    assert by_mode["include"]["name"] == org["name"] and role["id"] == by_mode["match"]["id"]


def test_bad_elements_is_400():
    with pytest.raises(InvalidRequest, match="_elements"):
        run("Organization", ("_elements", "name;drop"))


def test_summary_data_drops_text():
    OrganizationFactory.create(text={"status": "generated", "div": "<div>x</div>"})
    content = run("Organization", ("_summary", "data")).entries[0].content
    assert "text" not in content and "name" in content and SUBSETTED in _tags(content)


def test_summary_true_keeps_summary_elements_only():
    OrganizationFactory.create(
        text={"status": "generated", "div": "<div>x</div>"},
        alias=["Alias"],
        telecom=[{"system": "phone", "value": "555"}],
    )
    content = run("Organization", ("_summary", "true")).entries[0].content
    assert {"name", "identifier", "active", "type"} <= set(content)
    assert not {"text", "alias", "telecom", "address"} & set(content)
    assert SUBSETTED in _tags(content)


def test_summary_text_keeps_text_and_mandatory():
    EndpointFactory.create(text={"status": "generated", "div": "<div>ep</div>"})
    content = run("Endpoint", ("_summary", "text")).entries[0].content
    assert set(content) == {
        "resourceType",
        "id",
        "meta",
        "text",
        "status",
        "connectionType",
        "payloadType",
        "address",
    }


def test_summary_false_and_bad_values():
    org = OrganizationFactory.create()
    assert run("Organization", ("_summary", "false")).entries[0].content == org
    with pytest.raises(InvalidRequest, match="_summary"):
        run("Organization", ("_summary", "yes"))


# ---------------------------------------------------------------- _include / _revinclude


@pytest.mark.parametrize(("rtype", "param"), REFERENCE_PARAMS)
def test_include_and_revinclude_every_reference_param(rtype, param):
    target_type, target, source, _other = make_link(rtype, param)
    included = run(rtype, ("_id", source["id"]), ("_include", f"{rtype}:{param}"))
    assert match_ids(included) == [source["id"]]
    assert include_ids(included) == {f"{target_type}/{target['id']}"}
    typed = run(rtype, ("_id", source["id"]), ("_include", f"{rtype}:{param}:{target_type}"))
    assert include_ids(typed) == {f"{target_type}/{target['id']}"}
    reverse = run(target_type, ("_id", target["id"]), ("_revinclude", f"{rtype}:{param}"))
    assert match_ids(reverse) == [target["id"]]
    assert include_ids(reverse) == {f"{rtype}/{source['id']}"}
    assert f"{rtype}:{param}" in search_includes(rtype)
    assert f"{rtype}:{param}" in search_revincludes(target_type)


def test_include_star_dedupes_and_never_repeats_matches():
    parent = OrganizationFactory.create()
    endpoint = EndpointFactory.create()
    ref = {"reference": f"Organization/{parent['id']}"}
    children = [
        OrganizationFactory.create(
            partOf=ref, endpoint=[{"reference": f"Endpoint/{endpoint['id']}"}]
        )
        for _ in range(3)
    ]
    result = run("Organization", ("_include", "Organization:*"))
    assert sorted(match_ids(result)) == sorted([parent["id"], *(c["id"] for c in children)])
    assert include_ids(result) == {f"Endpoint/{endpoint['id']}"}  # parent already a match
    narrowed = run("Organization", ("partof", parent["id"]), ("_include", "Organization:*"))
    assert include_ids(narrowed) == {
        f"Organization/{parent['id']}",
        f"Endpoint/{endpoint['id']}",
    }
    assert len(narrowed.entries) == 5


def test_revinclude_skips_deleted_and_is_capped(settings):
    org = OrganizationFactory.create()
    ref = {"reference": f"Organization/{org['id']}"}
    roles = [PractitionerRoleFactory.create(organization=ref) for _ in range(3)]
    storage.delete("PractitionerRole", roles[0]["id"])
    result = run("Organization", ("_revinclude", "PractitionerRole:organization"))
    assert include_ids(result) == {f"PractitionerRole/{r['id']}" for r in roles[1:]}
    settings.FHIR_MAX_INCLUDES = 1
    capped = run("Organization", ("_revinclude", "PractitionerRole:organization"))
    assert len(include_ids(capped)) == 1


def test_includes_take_a_constant_number_of_queries():
    def page_queries(n):
        for _ in range(n):
            org = OrganizationFactory.create()
            prac = PractitionerFactory.create()
            PractitionerRoleFactory.create(
                organization={"reference": f"Organization/{org['id']}"},
                practitioner={"reference": f"Practitioner/{prac['id']}"},
            )
        with CaptureQueriesContext(connection) as queries:
            result = run(
                "PractitionerRole",
                ("_include", "PractitionerRole:organization"),
                ("_include", "PractitionerRole:practitioner"),
                ("_count", "50"),
            )
        return len(queries), result

    few, _small = page_queries(2)
    many, large = page_queries(10)
    assert few == many and len(include_ids(large)) == 24


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_include", "Organization"),
        ("_include", "Organization:name"),
        ("_include", "Organization:partof:Endpoint"),
        ("_include", "Location:partof"),  # source must be the searched type
        ("_include", "Patient:x"),
        ("_revinclude", "PractitionerRole:practitioner"),  # does not point at Organization
        ("_revinclude", "Location:organization:Endpoint"),
    ],
)
def test_bad_include_values_are_400(name, value):
    with pytest.raises(InvalidRequest, match=name):
        run("Organization", (name, value))


def test_include_iterate_follows_parents_of_included_resources():
    top = OrganizationFactory.create()
    middle = OrganizationFactory.create(partOf={"reference": f"Organization/{top['id']}"})
    leaf = OrganizationFactory.create(partOf={"reference": f"Organization/{middle['id']}"})
    result = run(
        "Organization",
        ("_id", leaf["id"]),
        ("_include:iterate", "Organization:partof"),
        strict=True,
    )
    assert include_ids(result) == {f"Organization/{top['id']}", f"Organization/{middle['id']}"}
    assert result.ignored == []


def test_other_modifiers_on_includes_are_refused_strictly():
    with pytest.raises(InvalidRequest, match="recurse"):
        run("Organization", ("_include:recurse", "Organization:partof"), strict=True)


def test_revinclude_star_covers_every_param_pointing_here():
    org = OrganizationFactory.create()
    ref = {"reference": f"Organization/{org['id']}"}
    child = OrganizationFactory.create(partOf=ref)
    result = run("Organization", ("_id", org["id"]), ("_revinclude", "Organization:*"))
    assert include_ids(result) == {f"Organization/{child['id']}"}


def test_self_params_are_canonical():
    result = run(
        "Organization",
        ("_revinclude", "PractitionerRole:organization"),
        ("name", "b"),
        ("_count", "5"),
        ("active", "true"),
        ("_format", "json"),
        ("_include", "Organization:partof"),
    )
    assert result.self_params == [
        ("active", "true"),
        ("name", "b"),
        ("_count", "5"),
        ("_include", "Organization:partof"),
        ("_revinclude", "PractitionerRole:organization"),
    ]


def test_every_type_searchable_without_params():
    for rtype, factory in FACTORIES.items():
        factory.create()
        assert run(rtype).total == 1, rtype
    # Owned types (Subscription) are written with their owner: tests/subscriptions searches them.
    assert set(FACTORIES) == set(RESOURCES) - set(OWNED_TYPES)
