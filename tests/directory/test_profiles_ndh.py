"""NDH profiles, compiled from the IG's FSH and vendored: the IG's own examples are the oracle.

Every NDH example of the directory's types passes its profile; each kind of rule the profiles
carry (cardinality, fixed values, required bindings, extension slices and the extension
definitions they name, the profiles' constraints) refuses a copy changed to break it, naming the
profile and the element or constraint.
"""

from __future__ import annotations

import copy
import time

import pytest

from directory import profiles
from directory.errors import InvalidResource
from directory.profiles import definitions
from directory.validation import validate_resource
from tests import ndh

EXAMPLES = ndh.examples()
NDH = ndh.NDH
NDH_PROFILES = {
    "ndh-Endpoint": "Endpoint",
    "ndh-Group": "Group",
    "ndh-HealthcareService": "HealthcareService",
    "ndh-InsurancePlan": "InsurancePlan",
    "ndh-Location": "Location",
    "ndh-Network": "Organization",
    "ndh-Organization": "Organization",
    "ndh-OrganizationAffiliation": "OrganizationAffiliation",
    "ndh-Practitioner": "Practitioner",
    "ndh-PractitionerRole": "PractitionerRole",
}
VERIFICATION = f"{NDH}base-ext-verification-status"


def rules(resource: dict) -> list[tuple[str, str]]:
    """(rule, expression) of each issue the write path raises for `resource`."""
    try:
        validate_resource(resource["resourceType"], resource)
    except InvalidResource as error:
        issues = error.issues()
        return [(i["details"]["text"], i["expression"][0]) for i in issues if "details" in i]
    return []


@pytest.mark.parametrize("resource", EXAMPLES, ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_every_ndh_example_passes_its_profile(resource):
    claimed = resource["meta"]["profile"]
    assert claimed and all(url.startswith(NDH) for url in claimed)
    assert profiles.validate(resource) == []
    validate_resource(resource["resourceType"], resource)


def test_the_ndh_profiles_are_enforced_and_the_examples_cover_them():
    enforced = set(profiles.profile_urls())
    for name, resource_type in NDH_PROFILES.items():
        assert f"{NDH}{name}" in enforced
        assert definitions()[f"{NDH}{name}"].type == resource_type
    assert {p for r in EXAMPLES for p in r["meta"]["profile"]} == {
        f"{NDH}{name}" for name in NDH_PROFILES
    }


def test_every_extension_an_ndh_profile_names_is_vendored():
    named = {
        url
        for name in NDH_PROFILES
        for element in definitions()[f"{NDH}{name}"].by_id.values()
        for url in element.type_profiles
    }
    assert len(named) > 40
    missing = sorted(url for url in named if url not in definitions())
    assert missing == []


def _set(path: str, value: object):
    def change(resource: dict) -> None:
        resource[path] = value

    return change


def _drop(*paths: str):
    def change(resource: dict) -> None:
        for path in paths:
            resource.pop(path, None)

    return change


def _extension(url: str, **value: object):
    def change(resource: dict) -> None:
        resource.setdefault("extension", []).append({"url": url, **value})

    return change


def _identifier_status(code: str):
    def change(resource: dict) -> None:
        resource["identifier"][0]["extension"][0]["valueCode"] = code

    return change


def _identifier_value(value: str):
    def change(resource: dict) -> None:
        resource["identifier"][0]["value"] = value

    return change


def _network_type(code: str):
    def change(resource: dict) -> None:
        resource["type"][0]["coding"][0]["code"] = code

    return change


VERIFIED = {
    "coding": [{"system": f"{NDH[:-20]}CodeSystem/NdhVerificationStatusCS", "code": "complete"}]
}

MUTATIONS = [
    # a min=1 element removed
    ("Location", "HospLoc1", _drop("name"), ("ndh-Location: Location.name", "Location.name")),
    (
        "HealthcareService",
        "BurrClinicServices",
        _drop("category"),
        ("ndh-HealthcareService: HealthcareService.category", "HealthcareService.category"),
    ),
    (
        "Group",
        "BehavioralHealthGroupAtBurrClinic",
        _drop("code"),
        ("ndh-Group: Group.code", "Group.code"),
    ),
    # a fixed value broken
    (
        "Endpoint",
        "AcmeEHRServerEndpoint",
        _set("status", "off"),
        ("ndh-Endpoint: Endpoint.status", "Endpoint.status"),
    ),
    (
        "Group",
        "BehavioralHealthGroupAtBurrClinic",
        _set("type", "person"),
        ("ndh-Group: Group.type", "Group.type"),
    ),
    # a code outside a required binding
    (
        "Organization",
        "AcmeofCTStdNet",
        _network_type("prov"),
        ("ndh-Network: Organization.type", "Organization.type[0]"),
    ),
    (
        "Endpoint",
        "AcmeEHRServerEndpoint",
        _set("payloadMimeType", ["text/plain"]),
        ("ndh-Endpoint: Endpoint.payloadMimeType", "Endpoint.payloadMimeType[0]"),
    ),
    # extensions: a forbidden slice, one too many, a wrong value, a bad code inside one
    (
        "Practitioner",
        "HansSolo",
        _extension(
            "http://hl7.org/fhir/StructureDefinition/individual-pronouns",
            extension=[{"url": "value", "valueCodeableConcept": {"text": "they/them"}}],
        ),
        (
            "ndh-Practitioner: Practitioner.extension:individual-pronouns",
            "Practitioner.extension",
        ),
    ),
    (
        "Location",
        "HospLoc1",
        _extension(VERIFICATION, valueCodeableConcept=VERIFIED),
        ("ndh-Location: Location.extension:verification-status", "Location.extension"),
    ),
    (
        "Endpoint",
        "AcmeEHRServerEndpoint",
        _extension(VERIFICATION, valueString="complete"),
        ("ndh-Endpoint: Extension.value[x]", "Endpoint.extension[1].value.ofType(string)"),
    ),
    (
        "Practitioner",
        "HansSolo",
        _identifier_status("lapsed"),
        (
            "ndh-Practitioner: Extension.value[x]",
            "Practitioner.identifier[0].extension[0].value.ofType(code)",
        ),
    ),
    # an identifier slice the profile forbids
    (
        "Organization",
        "AcmeofCTStdNet",
        _set("identifier", [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}]),
        ("ndh-Network: Organization.identifier:NPI", "Organization.identifier"),
    ),
    # a US Core 6.1.0 rule NDH inherits (the NPI check digit on the NPI identifier slice)
    (
        "Practitioner",
        "HansSolo",
        _identifier_value("1003310906"),
        ("ndh-Practitioner: us-core-17", "Practitioner.identifier[0]"),
    ),
    # the profiles' own constraints
    (
        "PractitionerRole",
        "HansSoloRole",
        _drop("telecom", "endpoint"),
        ("ndh-PractitionerRole: pd-1", "PractitionerRole"),
    ),
    (
        "InsurancePlan",
        "AcmeQHPBronze",
        _drop("network"),
        ("ndh-InsurancePlan: network-or-NatlDirwork", "InsurancePlan"),
    ),
]


@pytest.mark.parametrize(
    ("resource_type", "logical_id", "change", "expected"),
    MUTATIONS,
    ids=[m[3][0] for m in MUTATIONS],
)
def test_a_broken_rule_is_refused_naming_profile_and_element(
    resource_type, logical_id, change, expected
):
    resource = ndh.example(resource_type, logical_id)
    assert rules(resource) == []
    change(resource)
    assert expected in rules(resource)


def test_meta_last_updated_is_judged_as_stored():
    # Every NDH profile requires meta.lastUpdated; storage stamps it on every write, so a client
    # that leaves it out is accepted, and the rule is still there for the resource as given.
    org = ndh.example("Organization", "Acme")
    del org["meta"]["lastUpdated"]
    assert rules(org) == []
    assert profiles.validate(org) == [
        issue for issue in profiles.validate(org) if "meta.lastUpdated" in issue["diagnostics"]
    ]
    assert [i["details"]["text"] for i in profiles.validate(org)] == [
        "ndh-Organization: Organization.meta.lastUpdated"
    ]


def test_range_bounds_out_of_order_fail_rng_2():
    # NDH's age-range extension is the IG's one Range: in order it passes (the example above);
    # reversed, R4's rng-2 refuses it (judged directly: fhirpathpy cannot compare Quantities).
    service = ndh.example("HealthcareService", "HealthcareService-Social-Hope-CBO")
    age = service["extension"][1]["extension"][1]["valueRange"]
    assert age["low"]["value"] < age["high"]["value"]
    age["low"]["value"], age["high"]["value"] = age["high"]["value"], age["low"]["value"]
    assert ("rng-2", "HealthcareService.extension[1].extension[1].value.ofType(Range)") in rules(
        service
    )


def test_validation_cost_of_an_ndh_profile_is_reported(capsys):
    plain = copy.deepcopy(EXAMPLES)
    for resource in plain:
        del resource["meta"]["profile"]
    for resource in [*EXAMPLES, *plain]:  # warm: compile every expression once
        profiles.validate(resource)

    def per_resource(resources: list[dict]) -> float:
        start = time.perf_counter()
        for _ in range(3):
            for resource in resources:
                profiles.validate(resource)
        return (time.perf_counter() - start) / (3 * len(resources))

    with_profile, without = per_resource(EXAMPLES), per_resource(plain)
    with capsys.disabled():
        print(
            f"\nNDH examples: {with_profile * 1e3:.2f} ms per resource with the profile, "
            f"{without * 1e3:.2f} ms without (R4 only): +{(with_profile - without) * 1e3:.2f} ms"
        )
    assert with_profile < 0.1  # a generous ceiling that uncompiled FHIRPath would break
