"""The one R4 reference parser (directory/references.py): the spec's literal forms, and what it
refuses."""

from __future__ import annotations

import pytest

from directory import references
from directory.indexing import parse_reference
from directory.references import ID_REGEX, Reference, parse, parse_restful, restful_key
from directory.registry import ID_PATTERN
from directory.registry import ID_REGEX as REGISTRY_ID_REGEX

UUID = "urn:uuid:7f1c3f0e-5d0a-4a52-9d59-2f1d1d6a0001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Organization/o1", Reference("relative", type="Organization", id="o1")),
        (
            "Practitioner/p.1-x/_history/2",
            Reference("relative", type="Practitioner", id="p.1-x", version="2"),
        ),
        (
            "https://h.example/fhir/Location/l1",
            Reference("absolute", type="Location", id="l1", base="https://h.example/fhir/"),
        ),
        (
            "http://localhost:8000/r4/Endpoint/e1/_history/7",
            Reference(
                "absolute", type="Endpoint", id="e1", version="7", base="http://localhost:8000/r4/"
            ),
        ),
        # Any R4 type, not only the ones stored here (a reference may name another server's).
        ("Patient/pat1", Reference("relative", type="Patient", id="pat1")),
        ("#loc", Reference("contained", id="loc")),
        ("#", Reference("contained")),
        (UUID, Reference("temporary")),
        ("urn:oid:1.2.840.10008", Reference("temporary")),
        (
            "Organization?identifier=http://x|1",
            Reference("conditional", type="Organization", criteria="identifier=http://x|1"),
        ),
        ("Organization/" + "a" * 64, Reference("relative", "Organization", "a" * 64)),
    ],
)
def test_the_forms_the_spec_allows(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Organization",
        "Organization/",
        "Nothing/o1",  # not an R4 resource type
        "organization/o1",  # type names are case-sensitive
        "Resource/o1",  # abstract: no resource is of it
        "Organization/" + "a" * 65,  # ids are at most 64 characters
        "Organization/o_1",  # '_' is not an id character
        "Organization/o1/_history/",
        "Organization/o1/_history/v_1",
        "Organization/o1/extra",
        "ftp://h.example/fhir/Organization/o1",  # the spec's bases are http and https
        "https://h.example/fhir_r4/Organization/o1",  # '_' is outside the base's characters
        "https://Organization/o1",  # the host, not a path segment
        "foo/Organization/o1",  # a relative reference is Type/id itself
        "#bad id",
        "urn:uuid:1234",  # not a UUID
        "Nothing?x=1",
        None,
        {"reference": "Organization/o1"},
    ],
)
def test_what_is_no_reference(text):
    assert parse(text) is None


def test_the_parsed_reference_says_what_it_is():
    absolute = parse("https://h.example/fhir/Organization/o1/_history/3")
    assert (absolute.external, absolute.restful, absolute.key) == (
        True,
        True,
        ("Organization", "o1"),
    )
    assert parse("Organization/o1").external is False
    assert parse("#x").is_local and not parse("#x").restful
    assert parse(UUID).is_temporary
    with pytest.raises(ValueError, match="contained"):
        _ = parse("#x").key


def test_restful_only_and_keys():
    assert parse_restful("#x") is None
    assert parse_restful(UUID) is None
    assert parse_restful("Organization?name=x") is None
    assert restful_key("https://h.example/Location/l1/_history/1") == ("Location", "l1")
    assert restful_key("Location") is None


def test_every_caller_shares_it():
    """The index's parser is this one, and the id grammar has one home the registry re-exports."""
    assert parse_reference is parse_restful
    assert REGISTRY_ID_REGEX is ID_REGEX
    assert ID_PATTERN is references.ID_PATTERN
    assert {"Organization", "Patient", "VisionPrescription", "Account"} <= (
        references.resource_type_names()
    )
    assert "DomainResource" not in references.resource_type_names()
