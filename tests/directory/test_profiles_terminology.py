"""Required bindings the R4 packages cannot list: media types, ISO 4217 currencies, USPS codes.

Oracles from outside the validator: pycountry's ISO 4217 and US subdivision data, Python's
`mimetypes` table of media types, US Core's own ValueSet (vendored in data/source/) and the
Plan-Net and NDH examples that use these bindings.
"""

from __future__ import annotations

import copy
import json
import mimetypes

import pycountry
import pytest

from directory import profiles
from directory.errors import InvalidResource
from directory.profiles.definitions import DATA_DIR, definitions, value_sets
from directory.profiles.mediatypes import is_media_type
from directory.validation import validate_resource
from tests import ndh, plannet

MIMETYPES = "http://hl7.org/fhir/ValueSet/mimetypes"
CURRENCIES = "http://hl7.org/fhir/ValueSet/currencies"
USPS = "http://hl7.org/fhir/us/core/ValueSet/us-core-usps-state"
USPS_SYSTEM = "https://www.usps.com/"
BY_ID = {r["id"]: r for r in plannet.examples()}


def issues(resource: dict) -> list[dict]:
    try:
        validate_resource(resource["resourceType"], resource)
    except InvalidResource as error:
        return error.issues()
    return []


def endpoint(*mime_types: str) -> dict:
    return {
        "resourceType": "Endpoint",
        "status": "active",
        "address": "https://ep.example/fhir",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
        },
        "payloadType": [{"text": "directory"}],
        "payloadMimeType": list(mime_types),
    }


def plan_cost(currency: str) -> dict:
    cost = {"type": {"text": "copay"}, "cost": {"value": 20, "currency": currency}}
    return {"resourceType": "InsurancePlan", "name": "P", "plan": [{"generalCost": [cost]}]}


# US Core 6.1.0's (NDH's dependency): each includes a value set only VSAC's terminology server
# publishes, so no package lists it.
VSAC_BOUND = {
    f"http://hl7.org/fhir/us/core/ValueSet/{name}"
    for name in (
        *("birthsex", "omb-race-category", "detailed-race"),
        *("omb-ethnicity-category", "detailed-ethnicity"),
    )
}


def test_no_required_binding_is_left_unchecked_but_vsac_ones():
    checked, unchecked = value_sets()
    assert set(unchecked) == VSAC_BOUND
    assert all("http://cts.nlm.nih.gov/fhir/ValueSet/" in why for why in unchecked.values())
    assert {MIMETYPES, CURRENCIES, USPS} <= set(checked)
    assert profiles.required_codes("Endpoint.payloadMimeType") is None  # a grammar, no list


# ---------------------------------------------------------------- media types (BCP 13)


def test_every_media_type_python_knows_is_accepted():
    # Python's own table only: once anything calls mimetypes.init(), the module-level maps also
    # hold the machine's /etc/mime.types, with unregistered top-level types such as `chemical/`.
    table = mimetypes.MimeTypes()
    known = set(table.types_map[True].values()) | set(table.types_map[False].values())
    assert len(known) > 50
    assert [t for t in sorted(known) if not is_media_type(t)] == []
    assert issues(endpoint(*sorted(known))) == []


@pytest.mark.parametrize(
    "code",
    [
        "application/fhir+json; fhirVersion=4.0",
        "text/plain; charset=UTF-8",
        'text/plain; charset="utf-8"',
        "Application/JSON",
        "application/vnd.api+json",
        "multipart/form-data; boundary=abc",
    ],
)
def test_media_types_with_parameters_are_accepted(code):
    assert issues(endpoint(code)) == []


@pytest.mark.parametrize(
    "code",
    [
        "json",  # FHIR's _format shorthand, not a media type
        "application/",
        "/json",
        "text/html; charset",  # a parameter without a value
        "text/html;",
        "text/html; charset=utf-8; charset=latin1",
        "image/png, text/plain",  # a list
        "application/json/x",
        "text/(comment)plain",
        "unregistered/type",  # not an IANA top-level type
        "text/pl@in",
    ],
)
def test_malformed_media_types_are_refused_naming_element_and_binding(code):
    found = issues(endpoint("application/fhir+json", code))
    assert [(i["code"], i["expression"]) for i in found] == [
        ("code-invalid", ["Endpoint.payloadMimeType[1]"])
    ]
    assert MIMETYPES in found[0]["diagnostics"]
    assert found[0]["details"]["text"] == "Endpoint.payloadMimeType"


def test_attachment_content_type_is_checked_too():
    location = copy.deepcopy(BY_ID["StateOfCTLocation"])
    assert profiles.validate(location) == []
    location["extension"][0]["valueAttachment"]["contentType"] = "geojson"
    assert [i["details"]["text"] for i in profiles.validate(location)] == ["Attachment.contentType"]


def test_a_grammar_failure_has_the_shape_of_a_listed_one():
    listed = issues({"resourceType": "Location", "status": "sometimes"})[0]
    grammar = issues(endpoint("json"))[0]
    assert listed.keys() == grammar.keys()
    assert listed["code"] == grammar["code"] == "code-invalid"
    assert "is not in the required value set" in grammar["diagnostics"]


# ---------------------------------------------------------------- currencies (ISO 4217)


def test_the_currency_list_is_pycountry_iso_4217():
    checked = value_sets()[0][CURRENCIES]
    assert checked.pairs == {("urn:iso:std:iso:4217", c.alpha_3) for c in pycountry.currencies}


@pytest.mark.parametrize("code", ["USD", "EUR", "JPY", "CHF", "XXX"])
def test_current_currencies_are_accepted(code):
    assert pycountry.currencies.get(alpha_3=code) is not None
    assert issues(plan_cost(code)) == []


@pytest.mark.parametrize("code", ["usd", "US", "DOLLAR", "XYZ", "DEM", ""])
def test_other_currency_codes_are_refused(code):
    assert code not in {c.alpha_3 for c in pycountry.currencies}  # codes are upper case
    found = issues(plan_cost(code))
    if not code:
        assert found  # the structural pass refuses an empty string first
        return
    assert [(i["code"], i["details"]["text"]) for i in found] == [
        ("code-invalid", "Money.currency")
    ]
    assert found[0]["expression"] == ["InsurancePlan.plan[0].generalCost[0].cost.currency"]
    assert CURRENCIES in found[0]["diagnostics"]


# ---------------------------------------------------------------- USPS codes (US Core)


def test_the_usps_list_is_us_core_and_covers_pycountry_us_subdivisions():
    source = json.loads((DATA_DIR / "source" / "ValueSet-us-core-usps-state.json").read_text())
    listed = {(USPS_SYSTEM, c["code"]) for c in source["compose"]["include"][0]["concept"]}
    assert value_sets()[0][USPS].pairs == listed
    subdivisions = {
        s.code.removeprefix("US-") for s in pycountry.subdivisions.get(country_code="US")
    }
    codes = {code for _, code in listed}
    # ISO's 50 states, DC and outlying areas, but the Minor Outlying Islands, which have no
    # USPS code (US Core 3.1.1 leaves UM out), and the freely associated states ISO does not list.
    assert subdivisions - codes == {"UM"}
    assert codes - subdivisions == {"FM", "MH", "PW"}


def _where_valid(practitioner: dict) -> dict:
    qualification = practitioner["qualification"][0]["extension"][0]
    part = next(e for e in qualification["extension"] if e["url"] == "whereValid")
    return part["valueCodeableConcept"]["coding"][0]


@pytest.mark.parametrize("code", ["IL", "CT", "PR", "GU"])
def test_usps_codes_are_accepted_in_plan_net_where_valid(code):
    practitioner = copy.deepcopy(BY_ID["JoeSmith"])
    _where_valid(practitioner)["code"] = code
    assert issues(practitioner) == []


@pytest.mark.parametrize("code", ["il", "Illinois", "ZZ", "US-IL"])
def test_other_state_codes_are_refused_in_plan_net_where_valid(code):
    practitioner = copy.deepcopy(BY_ID["JoeSmith"])
    _where_valid(practitioner)["code"] = code
    found = issues(practitioner)
    assert len(found) == 1 and found[0]["code"] == "code-invalid"
    assert USPS in found[0]["diagnostics"]
    assert found[0]["details"]["text"].startswith("plannet-Practitioner: ")


def _ndh_where_valid(practitioner: dict) -> dict:
    scope = next(e for e in practitioner["qualification"][0]["extension"] if "extension" in e)
    part = next(e for e in scope["extension"] if e["url"] == "whereValid")
    return part["valueCodeableConcept"]["coding"][0]


def test_ndh_binds_the_same_canonical_at_us_core_6_1_0_and_gets_the_same_list():
    """NDH's qualification scope binds `us-core-usps-state|6.1.0`, which US Core 6.1.0 defines as
    all of the unlisted USPS system: validation looks the set up without its version, so US Core
    3.1.1's list (the vendored source) serves it as it serves Plan-Net's unversioned binding."""
    scope = definitions()[f"{ndh.NDH}base-ext-practitioner-qualification-scope"]
    where_valid = next(
        e for e in scope.by_id.values() if e.id.startswith("Extension.extension:whereValid.value")
    )
    assert where_valid.binding == USPS


@pytest.mark.parametrize("code", ["IL", "CT", "PR", "GU"])
def test_usps_codes_are_accepted_in_ndh_where_valid(code):
    practitioner = ndh.example("Practitioner", "HansSolo")
    assert _ndh_where_valid(practitioner)["code"] == "CT"  # the IG's own use of the binding
    _ndh_where_valid(practitioner)["code"] = code
    assert issues(practitioner) == []


@pytest.mark.parametrize("code", ["il", "Illinois", "ZZ", "US-IL", "AE"])
def test_other_state_codes_are_refused_in_ndh_where_valid(code):
    """AE (Armed Forces Europe) is a USPS code US Core 3.1.1 does not list: refused here."""
    practitioner = ndh.example("Practitioner", "HansSolo")
    _ndh_where_valid(practitioner)["code"] = code
    found = issues(practitioner)
    assert len(found) == 1 and found[0]["code"] == "code-invalid"
    assert USPS in found[0]["diagnostics"]
    # The extension definition's element, reached through the profile's extension slice
    assert found[0]["details"]["text"] == (
        "ndh-Practitioner: Extension.extension:whereValid.value[x]"
    )
