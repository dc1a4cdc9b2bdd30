"""Extract search index rows from a resource, following the declarations in the registry."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import clip, fold
from .registry import ID_REGEX, RESOURCE_TYPES, RESOURCES
from .searchparams.model import choice_element

HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
_STRING_PARTS = {"HumanName": HUMAN_NAME_PARTS, "Address": ADDRESS_PARTS}
# Where each complex type keeps a token's (system, code). ContactPoint: its system (phone,
# email, ...) and its value, as HAPI indexes it.
_TOKEN_KEYS = {
    "Coding": ("system", "code"),
    "Identifier": ("system", "value"),
    "ContactPoint": ("system", "value"),
}

_REFERENCE = re.compile(
    rf"^(?P<base>.*?/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>{ID_REGEX})(?:/_history/[^/]+)?$"
)


@dataclass(frozen=True)
class ParsedReference:
    type: str
    id: str
    external: bool  # an absolute URL: points at another server, not resolved locally


def parse_reference(reference: str) -> ParsedReference | None:
    """`Type/id`, `Type/id/_history/n` or an absolute URL ending in those; None otherwise."""
    match = _REFERENCE.match(reference or "")
    if not match:
        return None
    base = match.group("base") or ""
    external = "://" in base
    return ParsedReference(match.group("type"), match.group("id"), external)


def strings_of(type_name: str | None, element) -> list[str]:
    """The texts a string parameter finds in an element of this type."""
    if isinstance(element, str):
        return [element]
    parts = _STRING_PARTS.get(type_name or "")
    if parts is None or not isinstance(element, dict):
        return _extension_values(type_name, element, strings_of)
    values = []
    for part in parts:
        value = element.get(part)
        if isinstance(value, list):
            values.extend(v for v in value if isinstance(v, str))
        elif isinstance(value, str):
            values.append(value)
    return values


def tokens_of(type_name: str | None, element) -> list[tuple[str, str]]:
    """The (system, code) pairs a token parameter finds in an element of this type."""
    if isinstance(element, bool):
        return [("", "true" if element else "false")]
    if isinstance(element, str):
        return [("", element)]
    if not isinstance(element, dict):
        return []
    if type_name == "CodeableConcept":
        return [t for coding in element.get("coding") or [] for t in tokens_of("Coding", coding)]
    key = _TOKEN_KEYS.get(type_name or "")
    if key is None:
        return _extension_values(type_name, element, tokens_of)
    system, code = key
    value = element.get(code)
    return [(element.get(system) or "", value)] if isinstance(value, str) and value else []


def reference_of(type_name: str | None, element) -> list[ParsedReference]:
    """The local or absolute reference a Reference element (or Extension value) holds."""
    if type_name == "Extension":
        return _extension_values(type_name, element, reference_of)
    if not isinstance(element, dict):
        return []
    parsed = parse_reference(element.get("reference", ""))
    return [parsed] if parsed and parsed.type in RESOURCE_TYPES else []


def _extension_values(type_name, element, reader) -> list:
    """An Extension is searched by its value[x], whose type its JSON key names."""
    if type_name != "Extension" or not isinstance(element, dict):
        return []
    found = choice_element("Extension.value", element)
    return reader(*found) if found else []


@dataclass
class IndexRows:
    strings: list[tuple[str, str, str]]  # (param, folded, exact)
    tokens: list[tuple[str, str, str]]  # (param, system, code)
    references: list[tuple[str, ParsedReference]]  # (param, reference)
    sort_name: str


def extract(resource_type: str, content: dict, *, engine: bool = False) -> IndexRows:
    """Every index row a resource contributes, deduplicated.

    With engine=True every expression is evaluated by fhirpathpy, never by a direct accessor:
    the oracle the tests compare the fast path with.
    """
    rdef = RESOURCES[resource_type]
    strings, tokens, references = set(), set(), {}
    for param in rdef.params.values():
        found = param.engine_elements(content) if engine else param.elements(content)
        for type_name, element in found:
            if param.type == "string":
                for text in strings_of(type_name, element):
                    if text.strip():
                        strings.add((param.name, fold(text), clip(text)))
            elif param.type == "token":
                for system, code in tokens_of(type_name, element):
                    tokens.add((param.name, clip(system), clip(code)))
            elif param.type == "reference":
                for parsed in reference_of(type_name, element):
                    references[(param.name, parsed.type, parsed.id)] = parsed
    return IndexRows(
        strings=sorted(strings),
        tokens=sorted(tokens),
        references=[(key[0], ref) for key, ref in sorted(references.items())],
        sort_name=sort_name(resource_type, content),
    )


def sort_name(resource_type: str, content: dict) -> str:
    """The key for `_sort=name`: the first name as a person reads it, folded."""
    rdef = RESOURCES[resource_type]
    if not rdef.sort_name_param:
        return ""
    param = rdef.params[rdef.sort_name_param]
    for type_name, element in param.elements(content):
        if type_name == "HumanName" and isinstance(element, dict):
            family = element.get("family") or ""
            given = " ".join(element.get("given") or [])
            text = f"{family} {given}".strip() or element.get("text") or ""
        else:
            text = element if isinstance(element, str) else ""
        if text.strip():
            return fold(text)[:200]
    return ""
