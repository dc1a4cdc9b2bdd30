"""StructureDefinitions as data: the vendored snapshots, parsed once into element trees."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# The directory's resource types: their R4 definitions are vendored.
from ..references import resource_type_names
from ..registry import SUPPORTED_TYPES as RESOURCE_TYPES
from . import mediatypes

# Code systems whose codes are defined by a grammar, not a list: a required binding to a value set
# of all of such a system checks each code by the grammar (system -> (check, what it is)).
GRAMMARS: dict[str, tuple[Callable[[str], bool], str]] = {
    "urn:ietf:bcp:13": (mediatypes.is_media_type, mediatypes.DESCRIPTION),
}
CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"

DATA_DIR = Path(__file__).parent / "data"


@dataclass(eq=False)
class Element:
    """One snapshot element with the rules validation applies, and its children and slices."""

    id: str
    path: str
    name: str  # last path segment, e.g. "value[x]"
    min: int
    max: int | None  # None: unbounded
    types: tuple[str, ...]
    type_profiles: tuple[str, ...]  # profiles the element's types claim (extension definitions)
    target_profiles: tuple[str, ...]  # what its Reference type may point at; () for anything
    fixed: tuple[str, object] | None  # ("fixed" | "pattern", value)
    binding: str | None  # required value set canonical, without version
    constraints: list[dict]
    slicing: dict | None
    content_reference: str | None
    # An extensible or preferred binding (Plan-Net value sets): the admin's pickers offer its
    # codes; validation never reads it, as other codes are allowed.
    open_binding: str | None = None
    children: list[Element] = field(default_factory=list)
    slices: list[Element] = field(default_factory=list)
    # Derived once, for the walker: the element's name in FHIRPath, and for a choice element the
    # JSON property of each type (value[x] -> valueString: string, ...).
    label: str = ""
    choices: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.name.endswith("[x]"):
            self.label = self.name[:-3]
            self.choices = tuple((self.label + t[0].upper() + t[1:], t) for t in self.types)
        else:
            self.label = self.name

    @property
    def slice_name(self) -> str:
        return self.id.rsplit(".", 1)[-1].partition(":")[2]


@dataclass(frozen=True)
class ValueSetCodes:
    """A required binding's value set: its listed codes, or the grammar of its one code system."""

    pairs: frozenset  # (system, code)
    codes: frozenset  # the codes alone, for the `code` datatype, which carries no system
    grammar: tuple[str, Callable[[str], bool], str] | None = None  # (system, check, description)

    def includes(self, system: str | None, code: str) -> bool:
        """Whether (system, code) is in the set; a `code` value has no system (None)."""
        if self.grammar is not None:
            grammar_system, check, _ = self.grammar
            return system in (None, grammar_system) and check(code)
        return (system, code) in self.pairs if system is not None else code in self.codes


@dataclass(frozen=True)
class Definition:
    url: str
    type: str
    kind: str
    root: Element
    by_id: dict[str, Element]


def _element(raw: dict) -> Element:
    fixed = next(
        (
            ("fixed" if key.startswith("fixed") else "pattern", value)
            for key, value in raw.items()
            if key.startswith(("fixed", "pattern"))
        ),
        None,
    )
    max_ = raw.get("max", "*")
    types = raw.get("type", [])
    return Element(
        id=raw["id"],
        path=raw["path"],
        name=raw["path"].rsplit(".", 1)[-1],
        min=raw.get("min", 0),
        max=None if max_ == "*" else int(max_),
        types=tuple(t["code"] for t in types),
        type_profiles=tuple(p for t in types for p in t.get("profile", [])),
        target_profiles=tuple(
            p for t in types if t["code"] == "Reference" for p in t.get("targetProfile", [])
        ),
        fixed=fixed,
        binding=raw["binding"].split("|")[0] if "binding" in raw else None,
        constraints=raw.get("constraint", []),
        slicing=raw.get("slicing"),
        content_reference=raw.get("contentReference"),
        open_binding=raw["openBinding"].split("|")[0] if "openBinding" in raw else None,
    )


def _parent_id(element_id: str) -> tuple[str, bool]:
    """The id an element hangs under, and whether it is a slice of that element."""
    head, _, last = element_id.rpartition(".")
    if ":" in last:
        return f"{head}.{last.partition(':')[0]}" if head else last.partition(":")[0], True
    return head, False


def _definition(raw: dict) -> Definition:
    by_id: dict[str, Element] = {}
    root = None
    for item in raw["element"]:
        element = _element(item)
        by_id[element.id] = element
        parent_id, is_slice = _parent_id(element.id)
        parent = by_id.get(parent_id)
        if parent is None:
            root = element
        elif is_slice:
            parent.slices.append(element)
        else:
            parent.children.append(element)
    if root is None:
        raise ValueError(f"{raw['url']}: no snapshot elements")
    return Definition(raw["url"], raw["type"], raw.get("kind", ""), root, by_id)


@cache
def definitions() -> dict[str, Definition]:
    """Every vendored StructureDefinition by canonical URL (core ones also by type name)."""
    data = json.loads((DATA_DIR / "structure-definitions.json").read_text())
    out = {}
    for group in data.values():
        for raw in group:
            definition = _definition(raw)
            out[definition.url] = definition
    for group in ("core",):
        for raw in data[group]:
            out[raw["type"]] = out[raw["url"]]
    return out


@cache
def _value_set_data() -> dict:
    return json.loads((DATA_DIR / "value-sets.json").read_text())


@cache
def value_sets() -> tuple[dict[str, ValueSetCodes], dict[str, str]]:
    """Required-binding value sets by canonical (listed or by grammar), and those left unchecked
    (with why)."""
    data = _value_set_data()
    checked = {
        url: ValueSetCodes(frozenset(map(tuple, pairs)), frozenset(code for _, code in pairs))
        for url, pairs in data["expanded"].items()
    }
    for url, system in data.get("grammar", {}).items():
        check, description = GRAMMARS[system]
        checked[url] = ValueSetCodes(frozenset(), frozenset(), (system, check, description))
    return checked, data["not-expanded"]


@cache
def profile_type(url: str) -> str | None:
    """The resource type a profile (a Reference's targetProfile) constrains; None if unknown."""
    url = url.split("|")[0]
    definition = definitions().get(url)
    if definition is not None:
        return definition.type
    name = url.removeprefix(CORE_PROFILE)
    # Core Resource/DomainResource are not concrete types: None, as for any type (allowed_targets)
    return name if name != url and name in resource_type_names() else None


@cache
def open_value_sets() -> dict[str, tuple[tuple[str, str], ...]]:
    """Expansions of extensible/preferred-binding value sets, for pickers only (not checked)."""
    data = _value_set_data()
    return {url: tuple(map(tuple, pairs)) for url, pairs in data.get("open", {}).items()}


def profile_urls() -> list[str]:
    """Canonical URLs of the resource profiles this server validates against."""
    return sorted(
        url
        for url, d in definitions().items()
        if "://" in url
        and d.kind == "resource"
        and d.type in RESOURCE_TYPES
        and not url.startswith(CORE_PROFILE)
    )
