"""Index kinds added for issue 9: date ranges and prefixes, uri, token :text and :of-type,
composite, and :missing on every kind."""

from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

from directory.errors import InvalidRequest
from directory.search import SearchRequest, search
from directory.search.dates import interval_of
from tests.factories import FACTORIES, GroupFactory, OrganizationFactory, PractitionerRoleFactory

pytestmark = pytest.mark.django_db


def find(resource_type: str, query: str) -> set[str]:
    pairs = [*parse_qsl(query, keep_blank_values=True), ("_count", "200")]
    result = search(SearchRequest(resource_type, pairs, strict=True))
    return {e.content["id"] for e in result.entries if e.mode == "match"}


# ---------------------------------------------------------------- date

EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)
PERIODS = {
    "year2020": {"start": "2020-01-01", "end": "2020-12-31"},
    "open-end": {"start": "2021-06-01"},
    "open-start": {"end": "2019-05"},
    "two-hours": {"start": "2020-03-15T10:00:00Z", "end": "2020-03-15T12:00:00Z"},
    "march": {"start": "2020-03", "end": "2020-03"},
    "offset": {"start": "2020-03-15T23:30:00-05:00", "end": "2020-03-16T01:00:00-05:00"},
}


def period_range(period: dict) -> tuple[datetime, datetime]:
    start = interval_of(period["start"])[0] if "start" in period else EARLIEST
    end = interval_of(period["end"])[1] if "end" in period else LATEST
    return start, end


def spec_match(prefix: str, resource: tuple, search: tuple) -> bool:
    """FHIR R4 search 3.1.1.4.5, written from the text: ranges are [low, high)."""
    low, high = resource
    start, end = search
    contained = low >= start and high <= end
    return {
        "eq": contained,
        "ne": not contained,
        "gt": high > end,
        "lt": low < start,
        "ge": high > end or contained,
        "le": low < start or contained,
        "sa": low >= end,
        "eb": high <= start,
    }[prefix]


DATE_VALUES = [
    "2020",
    "2020-03",
    "2020-03-15",
    "2020-03-16",
    "2019",
    "2021-06-01",
    "2020-03-15T11:00:00Z",
    "2020-03-16T04:30:00Z",
]
PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]


@pytest.fixture
def roles():
    stored = {
        key: PractitionerRoleFactory.create(id=f"d-{key}", period=p) for key, p in PERIODS.items()
    }
    PractitionerRoleFactory.create(id="d-none")
    return stored


@pytest.mark.parametrize("prefix", PREFIXES)
def test_date_prefixes_follow_the_spec(roles, prefix):
    for value in DATE_VALUES:
        search_range = interval_of(value)
        expected = {
            f"d-{key}"
            for key, period in PERIODS.items()
            if spec_match(prefix or "eq", period_range(period), search_range)
        }
        assert find("PractitionerRole", f"date={prefix}{value}") == expected, value


def test_date_or_values_missing_and_both_parameters(roles):
    either = find("PractitionerRole", "date=2020-03-15") | find("PractitionerRole", "date=2020")
    assert find("PractitionerRole", "date=2020-03-15,2020") == either
    assert either == {"d-two-hours", "d-march", "d-year2020", "d-offset"}
    assert find("PractitionerRole", "date:missing=true") == {"d-none"}
    assert "d-none" not in find("PractitionerRole", "date:missing=false")
    # Plan-Net's `period` reads the same element as core's `date`.
    assert find("PractitionerRole", "period=ge2021") == find("PractitionerRole", "date=ge2021")


def test_date_approximately(roles):
    near = find("PractitionerRole", "date=ap2020-03-15")
    assert {"d-two-hours", "d-march", "d-year2020"} <= near
    assert "d-open-end" not in find("PractitionerRole", "date=ap2000")


def test_date_from_an_extension_value():
    url = "http://hl7.org/fhir/StructureDefinition/organization-period"
    period = OrganizationFactory.create(extension=[{"url": url, "valuePeriod": {"start": "2015"}}])
    OrganizationFactory.create()
    assert find("Organization", "period=ge2016") == {period["id"]}
    assert find("Organization", "period=lt2015") == set()


@pytest.mark.parametrize("bad", ["2020-13", "xx2020", "tomorrow", "2020-01-01T10"])
def test_bad_date_values_are_400(bad):
    with pytest.raises(InvalidRequest, match="date"):
        find("PractitionerRole", f"date={bad}")


# ---------------------------------------------------------------- uri


LOCAL_SD = "http://directory.example.org/fhir/StructureDefinition"


def test_profile_exact_below_above_missing():
    # Profiles this server does not know are accepted unchecked; Plan-Net ones would be enforced.
    org = OrganizationFactory.create(meta={"profile": [f"{LOCAL_SD}/plannet-Organization"]})
    net = OrganizationFactory.create(meta={"profile": [f"{LOCAL_SD}/plannet-Network"]})
    plain = OrganizationFactory.create()
    assert find("Organization", f"_profile={LOCAL_SD}/plannet-Organization") == {org["id"]}
    assert find("Organization", f"_profile={LOCAL_SD}") == set()
    assert find("Organization", f"_profile:below={LOCAL_SD}") == {org["id"], net["id"]}
    assert find("Organization", f"_profile:below={LOCAL_SD}/plannet") == set()
    above = f"{LOCAL_SD}/plannet-Network/extra/1"
    assert find("Organization", f"_profile:above={above}") == {net["id"]}
    assert find("Organization", "_profile:missing=true") == {plain["id"]}


# ---------------------------------------------------------------- token modifiers

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def test_token_text_searches_text_and_display():
    fac = OrganizationFactory.create(
        type=[{"coding": [{"system": "urn:t", "code": "fac", "display": "Facility"}]}]
    )
    grp = OrganizationFactory.create(type=[{"text": "Provider Group"}])
    assert find("Organization", "type:text=facil") == {fac["id"]}
    assert find("Organization", "type:text=PROVIDER gr") == {grp["id"]}
    assert find("Organization", "type=fac") == {fac["id"]}
    assert find("Organization", "type:text=fac,provider") == {fac["id"], grp["id"]}


def test_identifier_of_type():
    typed = {
        "type": {"coding": [{"system": V2, "code": "TAX"}]},
        "system": "urn:tin",
        "value": "77",
    }
    org = OrganizationFactory.create(identifier=[typed])
    OrganizationFactory.create(identifier=[{"system": "urn:tin", "value": "77"}])
    assert find("Organization", f"identifier:of-type={V2}|TAX|77") == {org["id"]}
    assert find("Organization", f"identifier:of-type={V2}|NPI|77") == set()
    assert find("Organization", "identifier:text=tax") == set()  # the type has no text
    with pytest.raises(InvalidRequest, match="type-system"):
        find("Organization", "identifier:of-type=77")


def test_tag_and_telecom_tokens():
    tagged = OrganizationFactory.create(meta={"tag": [{"system": "urn:tags", "code": "vip"}]})
    OrganizationFactory.create()
    assert find("Organization", "_tag=urn:tags|vip") == {tagged["id"]}
    role = PractitionerRoleFactory.create(
        telecom=[{"system": "email", "value": "a@example.org"}, {"system": "phone", "value": "1"}]
    )
    assert find("PractitionerRole", "email=a@example.org") == {role["id"]}
    assert find("PractitionerRole", "phone=a@example.org") == set()
    assert find("PractitionerRole", "telecom=email|a@example.org") == {role["id"]}


# ---------------------------------------------------------------- composite

LANG = {"coding": [{"system": "urn:c", "code": "lang"}]}


def characteristic(code: dict, **value) -> dict:
    return {"code": code, **value, "exclude": False}


def test_group_characteristic_value_matches_within_one_characteristic():
    spanish = GroupFactory.create(
        characteristic=[
            characteristic(
                LANG, valueCodeableConcept={"coding": [{"system": "urn:l", "code": "es"}]}
            ),
            characteristic({"text": "accepting"}, valueBoolean=True),
        ]
    )
    # `lang` and `es` both occur, but not in the same characteristic.
    mixed = GroupFactory.create(
        characteristic=[
            characteristic(LANG, valueCodeableConcept={"coding": [{"code": "fr"}]}),
            characteristic(
                {"coding": [{"code": "other"}]},
                valueCodeableConcept={"coding": [{"system": "urn:l", "code": "es"}]},
            ),
        ]
    )
    assert find("Group", "characteristic-value=lang$es") == {spanish["id"]}
    assert find("Group", "characteristic-value=urn:c|lang$urn:l|es") == {spanish["id"]}
    assert find("Group", "characteristic-value=lang$|fr") == {mixed["id"]}
    assert find("Group", "characteristic-value=urn:c|$es") == {spanish["id"]}
    assert find("Group", "value=es") == {spanish["id"], mixed["id"]}
    with pytest.raises(InvalidRequest, match=r"\$"):
        find("Group", "characteristic-value=lang")


# ---------------------------------------------------------------- :missing everywhere


@pytest.mark.parametrize(
    ("rtype", "param", "content"),
    [
        ("Organization", "name", {"name": "X"}),
        ("Organization", "type", {"type": [{"coding": [{"code": "x"}]}]}),
        ("Organization", "partof", None),
        ("PractitionerRole", "date", {"period": {"start": "2020"}}),
        ("Organization", "_profile", {"meta": {"profile": ["http://example.org/p"]}}),
        (
            "Group",
            "characteristic-value",
            {"characteristic": [characteristic(LANG, valueBoolean=True)]},
        ),
    ],
)
def test_missing_on_every_kind(rtype, param, content):
    if content is None:
        parent = OrganizationFactory.create()
        content = {"partOf": {"reference": f"Organization/{parent['id']}"}}
    empty = {"name": None, "type": None, "period": None}
    has = FACTORIES[rtype].create(**content)
    lacks = FACTORIES[rtype].create(**{k: v for k, v in empty.items() if k in content})
    assert has["id"] in find(rtype, f"{param}:missing=false")
    assert has["id"] not in find(rtype, f"{param}:missing=true")
    assert lacks["id"] in find(rtype, f"{param}:missing=true")


@pytest.mark.parametrize(
    "value",
    [
        "ap0001",
        "ap9998",
        "ap0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+14:00",
        "lt0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "sa9999",
    ],
)
def test_date_values_at_the_ends_of_time_answer_or_refuse(roles, value):
    try:
        find("PractitionerRole", f"date={value.replace('+', '%2B')}")
    except InvalidRequest as refused:
        assert "date" in refused.diagnostics
