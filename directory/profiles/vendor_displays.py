"""Regenerate `data/code-displays.json`: the display text of the codes the admin's pickers offer.

Run by a developer when the Plan-Net package or the NDH compile changes, not at install or run
time:

    python -m directory.profiles.vendor_displays PLAN_NET_PACKAGE_TGZ NDH_WORK_DIR

Only codes of the vendored expansions (`data/value-sets.json`) are kept, with the display their
CodeSystem (or the ValueSet that lists them, as for NUCC) gives: Plan-Net's first, then NDH's
compiled CodeSystems and ValueSets, then HL7 terminology (THO) from the package cache NDH was
compiled with (NDH_WORK_DIR of `directory.profiles.tools.ndh`).
"""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from .definitions import DATA_DIR

OUTPUT = DATA_DIR / "code-displays.json"


def _concepts(resource: dict) -> Iterator[tuple[str | None, str, str]]:
    """(system, code, display) of every concept a CodeSystem or a ValueSet's compose lists."""
    if resource.get("resourceType") == "CodeSystem":
        yield from _tree(resource.get("url"), resource.get("concept", []))
    for include in resource.get("compose", {}).get("include", []):
        yield from _tree(include.get("system"), include.get("concept", []))


def _tree(system: str | None, concepts: list[dict]) -> Iterator[tuple[str | None, str, str]]:
    for concept in concepts:
        if concept.get("display"):
            yield system, concept["code"], concept["display"]
        yield from _tree(system, concept.get("concept", []))


def _package(package: Path) -> Iterator[dict]:
    with tarfile.open(package) as archive:
        for member in archive.getmembers():
            if not member.name.endswith(".json") or "/example/" in member.name:
                continue
            fileobj = archive.extractfile(member)
            if fileobj is None:
                continue  # not a regular file
            resource = json.load(fileobj)
            if isinstance(resource, dict):
                yield resource


def _ndh(work: Path) -> Iterator[dict]:
    generated = work / "ndh" / "fsh-generated" / "resources"
    terminology = work / "home" / ".fhir" / "packages" / "hl7.terminology.r4#7.0.1" / "package"
    for folder in (generated, terminology):
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith(("CodeSystem-", "ValueSet-")):
                yield json.loads(path.read_text())


def build(package: Path, ndh_work: Path) -> dict[str, dict[str, str]]:
    data = json.loads((DATA_DIR / "value-sets.json").read_text())
    # Both the required and the open (extensible/preferred) bindings' codes are offered.
    wanted = [*data["expanded"].values(), *data.get("open", {}).values()]
    offered = {tuple(pair) for pairs in wanted for pair in pairs}
    out: dict[str, dict[str, str]] = {}
    for resource in (*_package(package), *_ndh(ndh_work)):
        for system, code, display in _concepts(resource):
            if system is not None and (system, code) in offered:
                out.setdefault(system, {}).setdefault(code, display)
    return {system: dict(sorted(codes.items())) for system, codes in sorted(out.items())}


def main(argv: list[str]) -> None:
    displays = build(Path(argv[1]), Path(argv[2]))
    OUTPUT.write_text(json.dumps(displays, indent=0, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv)
