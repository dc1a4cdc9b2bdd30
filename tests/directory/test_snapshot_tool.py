"""The developer tools that compile NDH: snapshots for differential-only StructureDefinitions
(US Core's sources), on a small base (what FHIR says a derived snapshot holds), and the FHIR
package cache layout SUSHI reads."""

from __future__ import annotations

import json

from directory.profiles.tools.fhir_cache import write_package
from directory.profiles.tools.snapshot import snapshot

BASE = {
    "type": "Organization",
    "snapshot": {
        "element": [
            {"id": "Organization", "path": "Organization", "min": 0, "max": "*"},
            {
                "id": "Organization.identifier",
                "path": "Organization.identifier",
                "min": 0,
                "max": "*",
                "type": [{"code": "Identifier"}],
                "constraint": [{"key": "ele-1"}],
            },
            {"id": "Organization.name", "path": "Organization.name", "min": 0, "max": "1"},
        ]
    },
}
IDENTIFIER = {
    "type": "Identifier",
    "snapshot": {
        "element": [
            {"id": "Identifier", "path": "Identifier", "min": 0, "max": "*"},
            {"id": "Identifier.system", "path": "Identifier.system", "min": 0, "max": "1"},
            {"id": "Identifier.value", "path": "Identifier.value", "min": 0, "max": "1"},
        ]
    },
}
PROFILE = {
    "type": "Organization",
    "differential": {
        "element": [
            {
                "id": "Organization.identifier",
                "path": "Organization.identifier",
                "min": 1,
                "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}]},
                "constraint": [{"key": "x-1"}],
            },
            {
                "id": "Organization.identifier.system",
                "path": "Organization.identifier.system",
                "min": 1,
            },
            {
                "id": "Organization.identifier:NPI",
                "path": "Organization.identifier",
                "sliceName": "NPI",
                "patternIdentifier": {"system": "http://hl7.org/fhir/sid/us-npi"},
            },
            {"id": "Organization.name", "path": "Organization.name", "min": 1},
        ]
    },
}


def _by_id() -> dict[str, dict]:
    built = snapshot(PROFILE, BASE, {"Identifier": IDENTIFIER})
    return {e["id"]: e for e in built["snapshot"]["element"]}


def test_differential_values_replace_and_constraints_add():
    elements = _by_id()
    assert elements["Organization.identifier"]["min"] == 1
    assert [c["key"] for c in elements["Organization.identifier"]["constraint"]] == ["ele-1", "x-1"]
    assert elements["Organization.name"]["min"] == 1


def test_children_unfold_from_the_datatype_and_a_new_slice_copies_them():
    elements = _by_id()
    assert list(elements) == [
        "Organization",
        "Organization.identifier",
        "Organization.identifier.system",
        "Organization.identifier.value",
        "Organization.identifier:NPI",
        "Organization.identifier:NPI.system",
        "Organization.identifier:NPI.value",
        "Organization.name",
    ]
    assert elements["Organization.identifier.value"]["path"] == "Organization.identifier.value"
    assert elements["Organization.identifier:NPI.system"]["min"] == 1


def test_a_new_slice_has_minimum_zero_and_no_slicing_of_its_own():
    npi = _by_id()["Organization.identifier:NPI"]
    assert npi["min"] == 0 and npi["max"] == "*"
    assert npi["sliceName"] == "NPI" and "slicing" not in npi
    assert npi["patternIdentifier"] == {"system": "http://hl7.org/fhir/sid/us-npi"}


def test_a_package_is_laid_out_as_the_fhir_package_cache_expects(tmp_path):
    resources = [
        {"resourceType": "ValueSet", "id": "a", "url": "http://example.org/ValueSet/a"},
        {**PROFILE, "resourceType": "StructureDefinition", "id": "p", "kind": "resource"},
    ]
    root = write_package(tmp_path, "example.pkg", "1.0.0", resources, {"hl7.fhir.r4.core": "4.0.1"})
    assert root == tmp_path / "example.pkg#1.0.0" / "package"
    assert sorted(p.name for p in root.iterdir()) == [
        ".index.json",
        "StructureDefinition-p.json",
        "ValueSet-a.json",
        "package.json",
    ]
    manifest = json.loads((root / "package.json").read_text())
    assert manifest["name"] == "example.pkg" and manifest["fhirVersions"] == ["4.0.1"]
    index = json.loads((root / ".index.json").read_text())["files"]
    assert index[1] == {
        "filename": "StructureDefinition-p.json",
        "resourceType": "StructureDefinition",
        "id": "p",
        "kind": "resource",
        "type": "Organization",
    }
