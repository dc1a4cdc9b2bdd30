"""Admin form fields derived from the StructureDefinitions the server validates against.

Nothing here names a resource type: the top-level elements of the record's definition (its
claimed Plan-Net profile when the server knows it, else R4 core) whose datatype an administrator
can edit become fields, with the profile's cardinality and bindings (required ones, enforced on
save; extensible or preferred Plan-Net ones, offered but not enforced), and each complex
datatype is edited through its own primitive children, read from that datatype's snapshot. So a
new resource type or profile gets a form as soon as its snapshot is vendored.

Values travel as flat HTML field names, `f.<element>.<index>` for a primitive and
`f.<element>.<index>.<part>` for a part of a complex one. `apply()` edits only those: whatever
the form does not show (extensions, periods, backbone elements, codings after the first) is
carried over from the stored resource untouched.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from .profiles import allowed_targets, known
from .profiles.definitions import (
    DATA_DIR,
    Definition,
    Element,
    definitions,
    open_value_sets,
    value_sets,
)
from .registry import RESOURCE_TYPES

# Datatypes edited as one text input (their JSON value is a string).
TEXT_TYPES = frozenset(
    {"string", "markdown", "uri", "url", "canonical", "code", "id", "oid", "date", "dateTime"}
)
# Datatypes whose JSON value is a number: the text is converted back on save.
NUMBER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})
PRIMITIVE_TYPES = TEXT_TYPES | NUMBER_TYPES | {"boolean"}
# Complex datatypes the form edits through their primitive children (plus the first coding of a
# CodeableConcept); anything else (Period, backbone elements, choice types) is left to JSON.
COMPLEX_TYPES = frozenset(
    {"HumanName", "Identifier", "Address", "ContactPoint", "CodeableConcept", "Coding", "Reference"}
)
# Resource-level elements that are bookkeeping, not directory content.
SKIPPED = frozenset(
    {"id", "meta", "implicitRules", "language", "text", "contained", "extension",
     "modifierExtension"}
)  # fmt: skip
# Datatype children that are not edited (the element id, and Reference.type, implied by the
# reference itself).
SKIPPED_PARTS = frozenset({"id", "Reference.type"})
CODING_PART = "coding"  # a CodeableConcept's first coding, edited as "system|code"
PREFIX = "f."


@dataclass(frozen=True)
class Part:
    """One input of a complex value: a primitive child of its datatype."""

    name: str
    type: str
    repeats: bool  # a list of strings, one per line (HumanName.given, Address.line)
    codes: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return humanize(self.name)


@dataclass(frozen=True)
class FormField:
    """One top-level element of a resource, as the form edits it."""

    name: str  # JSON property
    path: str  # e.g. "Organization.identifier"
    type: str
    min: int
    max: int | None
    codes: tuple[tuple[str, str], ...]  # bound value set expansion, (system, code)
    targets: tuple[str, ...]  # reference target types
    parts: tuple[Part, ...]
    # Whether JSON holds a list: R4's cardinality, which a profile narrowing max to 1 keeps.
    is_list: bool = False
    # The codes come from an extensible/preferred binding: the picker accepts other codes too.
    open_codes: bool = False

    @property
    def repeats(self) -> bool:
        return self.max is None or self.max > 1

    @property
    def label(self) -> str:
        return humanize(self.name)

    @property
    def primitive(self) -> bool:
        return not self.parts


def humanize(name: str) -> str:
    """ "postalCode" -> "Postal code"."""
    words = re.sub(r"(?<!^)([A-Z])", r" \1", name).lower()
    return words[:1].upper() + words[1:]


def has_definition(resource_type: str) -> bool:
    """Whether the server loads a StructureDefinition to derive this type's form from
    (SearchParameter, a conformance resource, has none: it is edited as JSON)."""
    return resource_type in definitions()


def definition_for(resource_type: str, resource: dict | None = None) -> Definition:
    """The definition a record is edited against: a profile it claims that the server knows,
    else the R4 definition of its type."""
    meta = (resource or {}).get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    for url in claimed if isinstance(claimed, list) else []:
        url = url.split("|")[0] if isinstance(url, str) else ""
        if known(url) and definitions()[url].type == resource_type:
            return definitions()[url]
    return definitions()[resource_type]


def form_fields(resource_type: str, resource: dict | None = None) -> list[FormField]:
    """The editable elements of `resource_type` (in snapshot order) for this record."""
    return _fields(definition_for(resource_type, resource).url)


@cache
def _fields(url: str) -> list[FormField]:
    definition = definitions()[url]
    out = []
    for element in definition.root.children:
        field = _field(definition, element)
        if field is not None:
            out.append(field)
    return out


def _field(definition: Definition, element: Element) -> FormField | None:
    if element.label in SKIPPED or element.max == 0 or len(element.types) != 1:
        return None
    type_ = element.types[0]
    if type_ not in PRIMITIVE_TYPES and type_ not in COMPLEX_TYPES:
        return None
    codes = _codes(element.binding)
    open_binding = element.open_binding
    open_codes = not codes and open_binding is not None
    if open_codes and open_binding is not None:
        codes = _sorted(open_value_sets().get(open_binding, ()))
    return FormField(
        name=element.label,
        path=element.path,
        type=type_,
        min=element.min,
        max=element.max,
        codes=codes,
        targets=_targets(element) if type_ == "Reference" else (),
        parts=_parts(type_) if type_ in COMPLEX_TYPES else (),
        is_list=_is_list(definition.type, element),
        open_codes=open_codes and bool(codes),
    )


def _is_list(resource_type: str, element: Element) -> bool:
    core = definitions()[resource_type].by_id.get(element.path, element)
    return core.max is None or core.max > 1


@cache
def _parts(datatype: str) -> tuple[Part, ...]:
    """The primitive children of a datatype, from its snapshot, as inputs."""
    definition = definitions()[datatype]
    parts = []
    for child in definition.root.children:
        if child.label == "coding" and datatype == "CodeableConcept":
            parts.append(Part(CODING_PART, "Coding", False))
            continue
        if child.label in SKIPPED_PARTS or child.path in SKIPPED_PARTS:
            continue
        if len(child.types) == 1 and child.types[0] in PRIMITIVE_TYPES:
            repeats = child.max is None or child.max > 1
            parts.append(Part(child.label, child.types[0], repeats, _codes(child.binding)))
    return tuple(parts)


def _codes(binding: str | None) -> tuple[tuple[str, str], ...]:
    expanded = value_sets()[0].get(binding) if binding else None
    return _sorted(expanded.pairs) if expanded else ()


def _sorted(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs, key=lambda p: (p[1], p[0])))


@cache
def _displays() -> dict[str, dict[str, str]]:
    return json.loads((DATA_DIR / "code-displays.json").read_text())


def display(system: str, code: str) -> str:
    """The display text of a picker's code, where the vendored packages give one."""
    return _displays().get(system, {}).get(code, "")


def _targets(element: Element) -> tuple[str, ...]:
    """The directory types the element's targetProfile allows: what validation accepts."""
    allowed = allowed_targets(element)
    return tuple(t for t in RESOURCE_TYPES if allowed is None or t in allowed)


# ---------------------------------------------------------------- resource <-> form values


def items(field: FormField, resource: dict) -> list:
    """The stored values of one element, as a list whatever its cardinality."""
    value = resource.get(field.name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def initial_values(fields: list[FormField], resource: dict) -> dict[str, str]:
    """The form's inputs for a stored resource (what `apply()` reads back)."""
    values = {}
    for field in fields:
        for index, item in enumerate(items(field, resource)):
            key = f"{PREFIX}{field.name}.{index}"
            if field.primitive:
                values[key] = _text(item)
                continue
            for part in field.parts if isinstance(item, dict) else ():
                values[f"{key}.{part.name}"] = _part_text(part, item)
    return values


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _part_text(part: Part, item: dict) -> str:
    if part.name == CODING_PART:
        codings = item.get("coding")
        coding = codings[0] if isinstance(codings, list) and codings else None
        return coding_text(coding) if isinstance(coding, dict) else ""
    if part.repeats:
        return "\n".join(_text(v) for v in item.get(part.name) or [])
    return _text(item.get(part.name))


def coding_text(coding: dict) -> str:
    code = _text(coding.get("code"))
    return f"{coding['system']}|{code}" if coding.get("system") else code


def indexes(post: Mapping[str, str], field: FormField) -> list[int]:
    """The item indexes of one element present in the submitted form."""
    pattern = re.compile(rf"^{re.escape(PREFIX + field.name)}\.(\d+)(?:\.|$)")
    found = {int(m.group(1)) for key in post if (m := pattern.match(key))}
    return sorted(found)


def apply(resource_type: str, resource: dict[str, Any], post: Mapping[str, str]) -> dict[str, Any]:
    """The resource with the form's values written over the elements the form shows."""
    fields = form_fields(resource_type, resource)
    out = copy.deepcopy(resource)
    for field in fields:
        submitted = indexes(post, field)
        if not submitted:
            continue  # not on the page: as stored
        stored = items(field, resource)
        shadows = _shadows(field, resource)
        new, new_shadows = [], []
        for index in submitted:
            key = f"{PREFIX}{field.name}.{index}"
            if post.get(f"{key}._remove"):
                continue
            base = stored[index] if index < len(stored) else None
            value = _read_item(field, base, post, key)
            shadow = shadows[index] if index < len(shadows) else None
            # A primitive present only as its extensions ("alias": [null], "_alias": [{...}])
            # is kept, its extensions beside it at the same index.
            if value is not None or shadow is not None:
                new.append(value)
                new_shadows.append(shadow)
        _store(out, field, new, new_shadows)
    return out


def _shadows(field: FormField, resource: dict) -> list:
    """A primitive element's extensions (`_name`), one entry per value (None: none)."""
    shadow = resource.get(f"_{field.name}") if field.primitive else None
    if shadow is None:
        return []
    return shadow if isinstance(shadow, list) else [shadow]


def _store(out: dict, field: FormField, new: list, shadows: list) -> None:
    values = [v for v in new if v is not None]
    extended = any(s is not None for s in shadows)
    if field.is_list and (values or extended):
        out[field.name] = new  # nulls hold the places of extension-only values
    elif not field.is_list and values:
        out[field.name] = values[0]
    else:
        out.pop(field.name, None)
    if field.primitive and extended:
        out[f"_{field.name}"] = shadows if field.is_list else shadows[0]
    elif field.primitive:
        out.pop(f"_{field.name}", None)


def _read_item(field: FormField, base: object, post: Mapping[str, str], key: str) -> Any:
    if field.primitive:
        return _primitive(field.type, post.get(key, ""))
    item = copy.deepcopy(base) if isinstance(base, dict) else {}
    for part in field.parts:
        name = f"{key}.{part.name}"
        if name not in post:
            continue  # not rendered: leave as stored
        _write_part(item, part, post.get(name, ""))
    return item or None


def _write_part(item: dict, part: Part, text: str) -> None:
    if part.name == CODING_PART:
        _write_coding(item, text.strip())
        return
    value: list[str] | str | int | bool | None
    if part.repeats:
        value = [line.strip() for line in text.splitlines() if line.strip()] or None
    else:
        value = _primitive(part.type, text)
    if value is None:
        item.pop(part.name, None)
    else:
        item[part.name] = value


def _write_coding(item: dict, text: str) -> None:
    """Replaces the first coding when its system|code changed; keeps its display otherwise."""
    stored = item.get("coding")
    codings = stored if isinstance(stored, list) else []
    first = codings[0] if codings and isinstance(codings[0], dict) else None
    if first is not None and coding_text(first) == text:
        return
    rest = codings[1:]
    if text:
        system, bar, code = text.rpartition("|")
        coding = {"system": system, "code": code} if bar else {"code": code}
        if display(system, code):
            coding["display"] = display(system, code)  # the code system's text, not a guess
        rest = [coding, *rest]
    if rest:
        item["coding"] = rest
    else:
        item.pop("coding", None)


def _primitive(type_: str, text: str) -> str | int | bool | None:
    text = text.strip()
    if not text:
        return None
    if type_ == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if type_ in NUMBER_TYPES and text.lstrip("-").isdigit():
        return int(text)
    return text


# ---------------------------------------------------------------- errors


def error_key(expression: str, resource_type: str) -> str | None:
    """The form key an OperationOutcome expression points at, e.g.
    "Organization.identifier[0].value" -> "identifier.0.value"."""
    head = f"{resource_type}."
    if not expression.startswith(head):
        return None
    key = re.sub(r"\[(\d+)\]", r".\1", expression[len(head) :])
    return key.split(".where(")[0]
