"""Index extraction: what each resource contributes to the search tables."""

from directory.indexing import extract, parse_reference
from directory.normalize import fold


def test_fold_ignores_case_accents_and_spacing():
    assert fold("  Zoë   MÜLLER-Peña ") == "zoe muller-pena"


def test_practitioner_name_parts_are_indexed_under_name_family_given():
    rows = extract(
        "Practitioner",
        {
            "resourceType": "Practitioner",
            "name": [{"family": "Müller", "given": ["José", "Ana"], "prefix": ["Dr."]}],
        },
    )
    assert ("family", "muller", "Müller") in rows.strings
    assert ("given", "ana", "Ana") in rows.strings
    names = {v for p, v, _ in rows.strings if p == "name"}
    assert names == {"muller", "jose", "ana", "dr."}
    assert rows.sort_name == "muller jose ana"


def test_address_parts_feed_address_and_specific_params():
    rows = extract(
        "Location",
        {
            "resourceType": "Location",
            "address": {
                "line": ["5 Elm St"],
                "city": "Salem",
                "state": "OR",
                "postalCode": "97301",
            },
        },
    )
    params = {(p, v) for p, v, _ in rows.strings}
    assert {
        ("address", "5 elm st"),
        ("address", "salem"),
        ("address-city", "salem"),
        ("address-state", "or"),
        ("address-postalcode", "97301"),
    } <= params


def test_tokens_cover_identifier_codeable_concept_coding_code_and_boolean():
    rows = extract(
        "Endpoint",
        {
            "resourceType": "Endpoint",
            "status": "active",
            "identifier": [{"system": "urn:sys", "value": "E1"}],
            "connectionType": {"system": "urn:ct", "code": "hl7-fhir-rest"},
            "payloadType": [{"coding": [{"system": "urn:pt", "code": "any"}]}],
        },
    )
    assert set(rows.tokens) == {
        ("identifier", "urn:sys", "E1"),
        ("status", "", "active"),
        ("connection-type", "urn:ct", "hl7-fhir-rest"),
        ("payload-type", "urn:pt", "any"),
    }
    active = extract("Organization", {"resourceType": "Organization", "active": False})
    assert ("active", "", "false") in active.tokens


def test_references_are_parsed_in_all_forms():
    assert parse_reference("Organization/1").external is False
    versioned = parse_reference("Organization/1/_history/3")
    assert (versioned.type, versioned.id) == ("Organization", "1")
    absolute = parse_reference("https://x.example/fhir/Location/abc")
    assert absolute.external and absolute.type == "Location"
    assert parse_reference("#contained") is None
    assert parse_reference("urn:uuid:1234") is None


def test_reference_to_unsupported_type_is_not_indexed():
    # HealthcareService became a stored type with issue 9; a Group may still list Patients.
    rows = extract(
        "Group",
        {
            "resourceType": "Group",
            "member": [
                {"entity": {"reference": "Practitioner/p1"}},
                {"entity": {"reference": "Patient/x1"}},
            ],
        },
    )
    assert [(p, r.type, r.id) for p, r in rows.references] == [("member", "Practitioner", "p1")]
