"""Search filters: every registry parameter of every type, _id, _lastUpdated, AND/OR, errors."""

import functools
import itertools
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

from directory.errors import InvalidRequest, InvalidResource
from directory.models import Resource
from directory.registry import RESOURCES
from directory.search import SearchRequest, matching_rows, search
from directory.validation import validate_resource
from tests.factories import FACTORIES, OrganizationFactory

pytestmark = pytest.mark.django_db


def find(resource_type: str, query: str, strict: bool = False) -> set[str]:
    """Ids of all matches for a query string (one page is plenty in these tests)."""
    pairs = [*parse_qsl(query, keep_blank_values=True), ("_count", "200")]
    result = search(SearchRequest(resource_type, pairs, strict=strict))
    return {entry.content["id"] for entry in result.entries if entry.mode == "match"}


def _placed_address(rtype: str, part: str, text: str) -> dict:
    """Location has one address, the others a list; Address.line is itself a list."""
    address = {part: [text] if part == "line" else text}
    return {"address": address if rtype == "Location" else [address]}


# How to put a given text where each string parameter reads it.
STRING_PLACES = {
    ("Organization", "name"): lambda t: {"name": t},
    ("Location", "name"): lambda t: {"name": t},
    ("Endpoint", "name"): lambda t: {"name": t},
    ("Practitioner", "name"): lambda t: {"name": [{"family": t}]},
    ("Practitioner", "family"): lambda t: {"name": [{"family": t, "given": ["Ann"]}]},
    ("Practitioner", "given"): lambda t: {"name": [{"family": "Smith", "given": [t]}]},
    **{
        (rtype, param): functools.partial(_placed_address, rtype, part)
        for rtype in ("Organization", "Location")
        for param, part in [
            ("address", "line"),
            ("address-city", "city"),
            ("address-state", "state"),
            ("address-postalcode", "postalCode"),
            ("address-country", "country"),
        ]
    },
}
STRING_PARAMS = [
    (rtype, name)
    for rtype, rdef in RESOURCES.items()
    for name, p in rdef.params.items()
    if p.type == "string"
]


def test_every_placed_string_param_exists():
    # The semantics of each string form are proved on these; that every loaded parameter indexes
    # what its FHIRPath expression selects is proved by tests/directory/test_searchparams.py.
    assert set(STRING_PLACES) <= set(STRING_PARAMS)


@pytest.mark.parametrize(("rtype", "param"), sorted(STRING_PLACES))
def test_string_param_prefix_exact_contains(rtype, param):
    place = STRING_PLACES[(rtype, param)]
    target = FACTORIES[rtype].create(**place("Müller Ångström"))
    decoy = FACTORIES[rtype].create(**place("Mueller Other"))
    assert find(rtype, f"{param}=muller") == {target["id"]}
    assert find(rtype, f"{param}=MÜLLER ang") == {target["id"]}
    assert find(rtype, f"{param}=m") >= {target["id"], decoy["id"]}
    assert find(rtype, f"{param}=ngstr") == set()  # default is a prefix match, not substring
    assert find(rtype, f"{param}:contains=NGSTR") == {target["id"]}
    assert find(rtype, f"{param}:exact=Müller Ångström") == {target["id"]}
    assert find(rtype, f"{param}:exact=müller ångström") == set()
    assert find(rtype, f"{param}:exact=Müller") == set()


def test_name_searches_alias_and_or_and():
    both = OrganizationFactory.create(name="Acme Health", alias=["Zenith Care"])
    acme = OrganizationFactory.create(name="Acme Labs")
    zen = OrganizationFactory.create(name="Zenith Labs")
    assert find("Organization", "name=zenith") == {both["id"], zen["id"]}
    assert find("Organization", "name=acme,zenith") == {both["id"], acme["id"], zen["id"]}
    assert find("Organization", "name=acme&name=zenith") == {both["id"]}
    assert find("Organization", "name=acme&name=zenith&name:contains=labs") == set()


def test_escaped_comma_is_part_of_the_value():
    comma = OrganizationFactory.create(name="Smith, Jones and Co")
    OrganizationFactory.create(name="Jones Partners")
    assert find("Organization", r"name:exact=Smith\, Jones and Co") == {comma["id"]}
    assert find("Organization", "name:exact=Smith, Jones and Co") == set()


# ---------------------------------------------------------------- tokens

S = "http://example.org/codes"
TOKEN_PLACES = {
    **{
        (rtype, "identifier"): lambda sys, code: {"identifier": [_ident(sys, code)]}
        for rtype in RESOURCES
        if "identifier" in RESOURCES[rtype].params
    },
    ("Organization", "type"): lambda sys, code: {"type": [_concept(sys, code)]},
    ("Location", "type"): lambda sys, code: {"type": [_concept(sys, code)]},
    ("PractitionerRole", "role"): lambda sys, code: {"code": [_concept(sys, code)]},
    ("PractitionerRole", "specialty"): lambda sys, code: {"specialty": [_concept(sys, code)]},
    ("Endpoint", "payload-type"): lambda sys, code: {"payloadType": [_concept(sys, code)]},
    ("Endpoint", "connection-type"): lambda sys, code: {"connectionType": _coding(sys, code)},
}


def _coding(system, code):
    return {"system": system, "code": code} if system else {"code": code}


def _concept(system, code):
    return {"coding": [_coding(system, code)]}


def _ident(system, value):
    return {"system": system, "value": value} if system else {"value": value}


CODED_PARAMS = sorted(TOKEN_PLACES)


def test_every_placed_token_param_exists():
    tokens = {
        (rtype, name)
        for rtype, rdef in RESOURCES.items()
        for name, p in rdef.params.items()
        if p.type == "token"
    }
    assert set(TOKEN_PLACES) <= tokens


@pytest.mark.parametrize(("rtype", "param"), CODED_PARAMS)
def test_token_param_all_forms(rtype, param):
    place = TOKEN_PLACES[(rtype, param)]
    target = FACTORIES[rtype].create(**place(S, "abc"))
    no_system = FACTORIES[rtype].create(**place(None, "xyz"))
    other = FACTORIES[rtype].create(**place("http://other.org", "abc"))
    assert find(rtype, f"{param}=abc") == {target["id"], other["id"]}
    assert find(rtype, f"{param}={S}|abc") == {target["id"]}
    assert find(rtype, f"{param}=|abc") == set()
    assert find(rtype, f"{param}=|xyz") == {no_system["id"]}
    assert find(rtype, f"{param}={S}|") == {target["id"]}
    assert find(rtype, f"{param}={S}|abc,|xyz") == {target["id"], no_system["id"]}
    assert find(rtype, f"{param}:not={S}|abc") == {no_system["id"], other["id"]}
    assert find(rtype, f"{param}=ABC") == set()  # codes are case-sensitive


@pytest.mark.parametrize(("rtype", "param"), [("Location", "status"), ("Endpoint", "status")])
def test_code_token_has_no_system(rtype, param):
    active = FACTORIES[rtype].create(status="active")
    suspended = FACTORIES[rtype].create(status="suspended")
    assert find(rtype, f"{param}=active") == {active["id"]}
    assert find(rtype, f"{param}=|suspended") == {suspended["id"]}
    assert find(rtype, f"{param}=http://hl7.org/fhir/x|active") == set()
    assert find(rtype, f"{param}=active,suspended") == {active["id"], suspended["id"]}
    assert find(rtype, f"{param}:not=active") == {suspended["id"]}


BOOLEAN_TYPES = [rtype for rtype, rdef in RESOURCES.items() if "active" in rdef.params]


@pytest.mark.parametrize("rtype", BOOLEAN_TYPES)
def test_boolean_active(rtype):
    yes = FACTORIES[rtype].create(active=True)
    no = FACTORIES[rtype].create(active=False)
    unknown = FACTORIES[rtype].create(active=None)
    assert find(rtype, "active=true") == {yes["id"]}
    assert find(rtype, "active=false") == {no["id"]}
    assert find(rtype, "active:not=true") == {no["id"], unknown["id"]}
    assert find(rtype, "active:missing=true") == {unknown["id"]}
    assert find(rtype, "active:missing=false") == {yes["id"], no["id"]}
    for bad in ("yes", "TRUE", "1", "|true"):
        with pytest.raises(InvalidRequest, match="active"):
            find(rtype, f"active={bad}")


def test_missing_on_string_and_reference():
    parent = OrganizationFactory.create(name="Parent")
    child = OrganizationFactory.create(partOf={"reference": f"Organization/{parent['id']}"})
    nameless = OrganizationFactory.create(name=None)
    assert find("Organization", "name:missing=true") == {nameless["id"]}
    assert find("Organization", "partof:missing=false") == {child["id"]}
    with pytest.raises(InvalidRequest, match="partof:missing"):
        find("Organization", "partof:missing=maybe")


# ---------------------------------------------------------------- references

REFERENCE_PLACES = {
    ("Organization", "partof"): lambda ref: {"partOf": ref},
    ("Organization", "endpoint"): lambda ref: {"endpoint": [ref]},
    ("PractitionerRole", "practitioner"): lambda ref: {"practitioner": ref},
    ("PractitionerRole", "organization"): lambda ref: {"organization": ref},
    ("PractitionerRole", "location"): lambda ref: {"location": [ref]},
    ("PractitionerRole", "endpoint"): lambda ref: {"endpoint": [ref]},
    ("Location", "organization"): lambda ref: {"managingOrganization": ref},
    ("Location", "partof"): lambda ref: {"partOf": ref},
    ("Location", "endpoint"): lambda ref: {"endpoint": [ref]},
    ("Endpoint", "organization"): lambda ref: {"managingOrganization": ref},
}
REFERENCE_PARAMS = [
    (rtype, p.name) for rtype, rdef in RESOURCES.items() for p in rdef.reference_params
]


def place_reference(rtype: str, param: str, ref: dict) -> dict:
    """Where a reference parameter reads: hand-written above, else built from its accessor's
    steps (children, `where` filters, extension values), each child tried as a list or not
    until R4 validation accepts the resource."""
    if (rtype, param) in REFERENCE_PLACES:
        return REFERENCE_PLACES[(rtype, param)](ref)
    term = RESOURCES[rtype].params[param].terms[0]
    assert term.fast, term.text
    children = sum(kind == "child" for kind, _, _ in term.steps)
    for shape in itertools.product((True, False), repeat=children):
        content = _build(list(term.steps), list(shape), ref, term.static_type)
        try:
            validate_resource(rtype, {"resourceType": rtype, **REQUIRED.get(rtype, {}), **content})
        except InvalidResource:
            continue
        return content
    raise AssertionError(f"cannot place {rtype}.{param}")


def _build(steps: list, listed: list, leaf: dict, static_type: str | None) -> dict:
    """The JSON that the steps select `leaf` from (the node the first step starts at)."""
    if not steps:
        return {"valueReference": leaf} if static_type == "Extension" else leaf
    kind, name, _ = steps[0]
    if kind == "choice":
        return {"valueReference": leaf}
    rest = steps[1:]
    filters = {}
    while rest and rest[0][0] == "where":
        filters[rest[0][1]] = rest[0][2]
        rest = rest[1:]
    node = _build(rest, listed[1:], leaf, static_type)
    node = {**REQUIRED_ELEMENTS.get(name, {}), **node, **filters}
    return {name: [node] if listed[0] else node}


# Elements R4 requires, for the types and backbone elements that have any.
# What the R4 invariants ask of a resource besides the placed reference (org-1: a name).
REQUIRED = {
    "Group": {"type": "practitioner", "actual": True},
    "Organization": {"name": "Acme"},
    "InsurancePlan": {"name": "Acme Gold"},
}
REQUIRED_ELEMENTS = {
    "qualification": {"code": {"text": "MD"}},
    "coverage": {"type": {"text": "medical"}, "benefit": [{"type": {"text": "visit"}}]},
}


def test_every_reference_param_can_be_placed():
    for rtype, param in REFERENCE_PARAMS:
        # A type the parameter targets: validation refuses a reference to a type its element's
        # targetProfile does not allow.
        target_type = RESOURCES[rtype].params[param].targets[0]
        assert place_reference(rtype, param, {"reference": f"{target_type}/x"})


def make_link(rtype: str, param: str):
    """A target, a source pointing at it, and a source pointing at another target."""
    target_type = RESOURCES[rtype].params[param].targets[0]
    target = FACTORIES[target_type].create()
    elsewhere = FACTORIES[target_type].create()
    source = FACTORIES[rtype].create(
        **place_reference(rtype, param, {"reference": f"{target_type}/{target['id']}"})
    )
    other = FACTORIES[rtype].create(
        **place_reference(rtype, param, {"reference": f"{target_type}/{elsewhere['id']}"})
    )
    return target_type, target, source, other


@pytest.mark.parametrize(("rtype", "param"), REFERENCE_PARAMS)
def test_reference_param_all_forms(rtype, param):
    target_type, target, source, other = make_link(rtype, param)
    tid = target["id"]
    expected = {source["id"]}
    assert find(rtype, f"{param}={target_type}/{tid}") == expected
    assert find(rtype, f"{param}={tid}") == expected
    assert find(rtype, f"{param}=https://fhir.example.org/r4/{target_type}/{tid}") == expected
    assert find(rtype, f"{param}:{target_type}={tid}") == expected
    assert find(rtype, f"{param}={target_type}/nope") == set()
    assert find(rtype, f"{param}={target_type}/{tid},nope") == expected
    assert source["id"] not in find(rtype, f"{param}:missing=true")
    assert other["id"] in find(rtype, f"{param}:missing=false")
    with pytest.raises(InvalidRequest, match=param):
        find(rtype, f"{param}=not a reference!")
    with pytest.raises(InvalidRequest, match="not supported"):
        find(rtype, f"{param}:identifier=x|y")


def test_reference_type_modifier_must_be_a_target():
    with pytest.raises(InvalidRequest, match="not supported"):
        find("PractitionerRole", "practitioner:Organization=x")


# ---------------------------------------------------------------- _id and _lastUpdated


@pytest.mark.parametrize("rtype", [t for t in RESOURCES if t in FACTORIES])  # not owned types
def test_id_param(rtype):
    one, two, three = (FACTORIES[rtype].create() for _ in range(3))
    assert find(rtype, f"_id={one['id']}") == {one["id"]}
    assert find(rtype, f"_id={one['id']},{three['id']}") == {one["id"], three["id"]}
    assert find(rtype, f"_id={one['id']}&_id={two['id']}") == set()
    assert find(rtype, "_id=unknown") == set()


@pytest.fixture
def dated():
    """Three organizations with known lastUpdated instants."""
    moments = {
        "a": datetime(2023, 5, 10, 10, 20, 30, 123000, tzinfo=UTC),
        "b": datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC),
        "c": datetime(2024, 3, 1, 0, 0, 0, tzinfo=UTC),
    }
    for key, moment in moments.items():
        OrganizationFactory.create(id=f"dated-{key}")
        Resource.objects.filter(logical_id=f"dated-{key}").update(last_updated=moment)
    return moments


LAST_UPDATED_CASES = [
    ("2024", "bc"),
    ("eq2024", "bc"),
    ("2023", "a"),
    ("2024-02", "b"),
    ("2024-02-29", "b"),
    ("2024-03-01", "c"),
    ("2024-02-29T12:00", "b"),
    ("2024-02-29T12:00Z", "b"),
    ("2024-02-29T12:00:00Z", "b"),
    ("2024-02-29T13:00:00+01:00", "b"),
    ("2024-02-29T13:00:00 01:00", "b"),  # '+' decoded to a blank by form parsing
    ("2024-02-29T07:00:00-05:00", "b"),
    ("2024-02-29T12:00:01Z", ""),
    ("2023-05-10T10:20:30.123Z", "a"),
    ("2023-05-10T10:20:30.12Z", "a"),
    ("2023-05-10T10:20:30.124Z", ""),
    ("2023-05-10T10:20:30Z", "a"),
    ("ne2024", "a"),
    ("ne2024-02-29", "ac"),
    ("lt2024", "a"),
    ("lt2024-03-01", "ab"),
    ("le2024-02", "ab"),
    ("le2023", "a"),
    ("gt2024-02", "c"),
    ("gt2023", "bc"),
    ("ge2024-02", "bc"),
    ("ge2024-03-01T00:00:00Z", "c"),
    ("gt2024-03-01T00:00:00Z", ""),
    ("sa2024-02-29", "c"),
    ("eb2024", "a"),
    ("2023,2024-03", "ac"),
]


@pytest.mark.parametrize(("value", "expected"), LAST_UPDATED_CASES)
def test_last_updated(dated, value, expected):
    found = find("Organization", f"_lastUpdated={value.replace('+', '%2B')}")
    assert found == {f"dated-{key}" for key in expected}


def test_last_updated_repeated_is_a_range(dated):
    assert find("Organization", "_lastUpdated=ge2024-01&_lastUpdated=lt2024-03") == {"dated-b"}


@pytest.mark.parametrize(
    "value",
    [
        "2024-13",
        "2024-02-30",
        "xx2024",
        "ap2024",
        "2024/01/01",
        "24",
        "2024-02-29T25:00Z",
        "2024-01-01T10",
        "today",
        "9999",
        # Beyond FHIR's ±14:00 offsets (PostgreSQL refuses beyond ±15:59: a 500 before).
        "2024-01-01T00:00:00+17:00",
        "2024-01-01T00:00:00-23:59",
        "ge2024-01-01T00:00-14:01",
    ],
)
def test_bad_dates_are_400(value):
    with pytest.raises(InvalidRequest, match="_lastUpdated"):
        find("Organization", f"_lastUpdated={value}")


# ---------------------------------------------------------------- unknown, strict, errors


def test_unknown_param_lenient_is_reported_and_left_out():
    org = OrganizationFactory.create()
    result = search(SearchRequest("Organization", [("foo", "1"), ("_id", org["id"])]))
    assert [e.content["id"] for e in result.entries] == [org["id"]]
    assert result.ignored == ["Unknown search parameter 'foo' was ignored"]
    assert result.self_params == [("_id", org["id"])]


def test_unknown_param_strict_is_400():
    with pytest.raises(InvalidRequest, match="foo"):
        search(SearchRequest("Organization", [("foo", "1")], strict=True))


def test_unknown_modifier_lenient_and_strict():
    OrganizationFactory.create(name="Alpha")
    OrganizationFactory.create(name="Beta")
    result = search(SearchRequest("Organization", [("name:fuzzy", "alp")]))
    assert len(result.entries) == 2 and "fuzzy" in result.ignored[0]
    with pytest.raises(InvalidRequest, match="fuzzy"):
        search(SearchRequest("Organization", [("name:fuzzy", "alp")], strict=True))


@pytest.mark.parametrize(
    "name",
    [
        "name:text",
        "type:of-type",  # only identifier parameters have a type
        "type:in",
        "name:not",
        "identifier:exact",
        "_id:not",
        "_lastUpdated:missing",
    ],
)
def test_known_but_unsupported_modifier_is_400(name):
    with pytest.raises(InvalidRequest, match="not supported") as caught:
        search(SearchRequest("Organization", [(name, "x")]))
    assert caught.value.code == "not-supported"


def test_format_and_pretty_are_silent_no_ops():
    org = OrganizationFactory.create()
    result = search(
        SearchRequest("Organization", [("_format", "json"), ("_pretty", "true")], strict=True)
    )
    assert [e.content["id"] for e in result.entries] == [org["id"]]
    assert result.ignored == [] and result.self_params == []


def test_empty_value_is_ignored():
    OrganizationFactory.create()
    result = search(SearchRequest("Organization", [("name", "")], strict=True))
    assert len(result.entries) == 1 and result.ignored


@pytest.mark.parametrize(
    "pair",
    [("identifier", "a|b|c"), ("name", "a\x00b"), ("\x00", "x"), ("partof", "Organization/")],
)
def test_bad_values_are_400(pair):
    with pytest.raises(InvalidRequest):
        search(SearchRequest("Organization", [pair]))


def test_unknown_resource_type():
    with pytest.raises(InvalidRequest, match="Patient"):
        search(SearchRequest("Patient", []))


def test_deleted_resources_never_match():
    gone = OrganizationFactory.create(name="Gone")
    kept = OrganizationFactory.create(name="Gone too")
    from directory import storage

    storage.delete("Organization", gone["id"])
    assert find("Organization", "name=gone") == {kept["id"]}
    assert find("Organization", f"_id={gone['id']}") == set()


# ---------------------------------------------------------------- conditional create


def test_matching_rows_is_strict_and_limited():
    for _ in range(3):
        OrganizationFactory.create(name="Same")
    assert len(matching_rows("Organization", [("name", "same")], limit=2)) == 2
    identifier = OrganizationFactory.create(name="Other")["identifier"][0]
    rows = matching_rows(
        "Organization", [("identifier", f"{identifier['system']}|{identifier['value']}")], 2
    )
    assert [r.logical_id for r in rows] and rows[0].content
    with pytest.raises(InvalidRequest):
        matching_rows("Organization", [("bogus", "1")], 2)
    with pytest.raises(InvalidRequest):
        matching_rows("Organization", [("_count", "1"), ("name", "same")], 2)
