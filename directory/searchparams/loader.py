"""Turn the SearchParameter resources in `data/` into per-type `SearchParam`s."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .definitions import ResourceDef, SearchParam
from .expressions import Term, split_union, term_for_base

DATA_DIR = Path(__file__).parent / "data"

# Which definition wins when two share a base type and code: the more specific guide.
SOURCE_RANKS = (
    ("http://hl7.org/fhir/us/davinci-pdex-plan-net/", 3),
    ("http://hl7.org/fhir/us/ndh/", 2),
    ("http://hl7.org/fhir/SearchParameter/", 1),
)
# Terms added to a definition's expression, with why. NDH's Location `contains` reads
# `extension.where(url=<boundary>).extension.value`: a sub-extension, yet the boundary extension
# it names is a simple one (`extension` 0..0, `value[x]` Attachment), so on conformant data that
# selects nothing. R5's own Location `contains` reads `extension(<boundary>).value`; both are kept.
EXPRESSION_ADDITIONS: dict[str, str] = {
    "http://hl7.org/fhir/us/ndh/SearchParameter/location-contains": (
        "Location.extension('http://hl7.org/fhir/StructureDefinition/location-boundary-geojson')"
        ".value.ofType(Attachment)"
    ),
}
# Answered from the resource row itself, not an index (see registry.COMMON_PARAMS).
ROW_PARAMS = ("_id", "_lastUpdated")
_ABSTRACT_BASES = ("Resource", "DomainResource")


def read_bundles(data_dir: Path = DATA_DIR) -> list[dict]:
    """Every SearchParameter in every Bundle file of `data_dir`, in file-name order."""
    found = []
    for path in sorted(data_dir.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") or {}
            if resource.get("resourceType") == "SearchParameter":
                found.append(resource)
    return found


def rank(definition: dict) -> int:
    url = definition.get("url", "")
    return next((r for prefix, r in SOURCE_RANKS if url.startswith(prefix)), 0)


def build_resources(definitions: Iterable[dict], types: Iterable[str]) -> dict[str, ResourceDef]:
    """One ResourceDef per supported type, holding the winning definition of each code."""
    types = tuple(types)
    chosen: dict[tuple[str, str], tuple[int, SearchParam]] = {}
    for definition in definitions:
        for param in params_of(definition, types):
            key = (param.base, param.name)
            score = rank(definition)
            if key not in chosen or score > chosen[key][0]:
                chosen[key] = (score, param)
    resources = {}
    for rtype in types:
        params = {code: p for (base, code), (_, p) in sorted(chosen.items()) if base == rtype}
        resources[rtype] = ResourceDef(rtype, params, _sort_name_param(params))
    return resources


def params_of(definition: dict, types: tuple[str, ...]) -> list[SearchParam]:
    """The definition as it applies to each supported base type (none if it has no expression)."""
    code, expression = definition.get("code"), definition.get("expression")
    if not code or not expression or code in ROW_PARAMS:
        return []
    if definition.get("url") in EXPRESSION_ADDITIONS:
        expression = f"{expression} | {EXPRESSION_ADDITIONS[definition['url']]}"
    bases = definition.get("base") or []
    if any(b in _ABSTRACT_BASES for b in bases):
        bases = list(types)
    found = []
    for base in (b for b in bases if b in types):
        texts = [t for t in (term_for_base(t, base) for t in split_union(expression)) if t]
        if texts:
            found.append(_param(definition, base, texts, types))
    return [p for p in found if p.type != "reference" or p.targets]


def _param(definition: dict, base: str, texts: list[str], types: tuple[str, ...]) -> SearchParam:
    ptype = definition["type"]
    return SearchParam(
        name=definition["code"],
        type=ptype,
        description=definition.get("description", ""),
        targets=_targets(definition, types) if ptype == "reference" else (),
        url=definition.get("url", ""),
        expression=" | ".join(texts),
        chain=tuple(definition.get("chain") or ()),
        modifiers=tuple(definition.get("modifier") or ()),
        base=base,
        components=tuple(
            (c.get("definition", ""), c.get("expression", ""))
            for c in definition.get("component") or ()
        ),
        terms=tuple(Term(base, text) for text in texts),
    )


def _targets(definition: dict, types: tuple[str, ...]) -> tuple[str, ...]:
    """Declared targets this server stores; a definition that names none may point anywhere."""
    declared = definition.get("target")
    if not declared:
        return types
    return tuple(t for t in declared if t in types)


def _sort_name_param(params: dict[str, SearchParam]) -> str | None:
    name = params.get("name")
    return "name" if name is not None and name.type == "string" else None
