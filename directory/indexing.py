"""Extract search index rows from a resource, following the declarations in the registry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalize import clip, fold
from .positions import extract_positions
from .registry import ID_REGEX, RESOURCE_TYPES, RESOURCES, SearchParam

HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")

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


def walk(node, path: list[str]):
    """Yield every element reached by following `path` through nested objects and arrays."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item, path)
        return
    if not path:
        if node is not None:
            yield node
        return
    if isinstance(node, dict):
        yield from walk(node.get(path[0]), path[1:])


def elements(content: dict, param: SearchParam):
    for dotted in param.paths:
        yield from walk(content, dotted.split(".")[1:])


def _strings_of(element, kind: str) -> list[str]:
    if kind == "string":
        return [element] if isinstance(element, str) else []
    parts = HUMAN_NAME_PARTS if kind == "HumanName" else ADDRESS_PARTS
    values = []
    for part in parts:
        value = element.get(part) if isinstance(element, dict) else None
        if isinstance(value, list):
            values.extend(v for v in value if isinstance(v, str))
        elif isinstance(value, str):
            values.append(value)
    return values


def _tokens_of(element, kind: str) -> list[tuple[str, str]]:
    if kind == "boolean":
        return [("", "true" if element else "false")] if isinstance(element, bool) else []
    if kind == "code":
        return [("", element)] if isinstance(element, str) else []
    if kind == "Identifier":
        value = element.get("value")
        return [(element.get("system") or "", value)] if value else []
    if kind == "Coding":
        code = element.get("code")
        return [(element.get("system") or "", code)] if code else []
    if kind == "CodeableConcept":
        return [t for coding in element.get("coding") or [] for t in _tokens_of(coding, "Coding")]
    raise ValueError(f"unknown token kind {kind}")


@dataclass
class IndexRows:
    strings: list[tuple[str, str, str]]  # (param, folded, exact)
    tokens: list[tuple[str, str, str]]  # (param, system, code)
    references: list[tuple[str, ParsedReference]]  # (param, reference)
    sort_name: str
    # HOOK(near): (param, band, latitude, longitude) rows of the position index (positions.py).
    positions: list[tuple[str, int, float, float]] = field(default_factory=list)


def extract(resource_type: str, content: dict) -> IndexRows:
    """Every index row a resource contributes, deduplicated."""
    rdef = RESOURCES[resource_type]
    strings, tokens, references = set(), set(), {}
    for param in rdef.params.values():
        for element in elements(content, param):
            if param.type == "string":
                for text in _strings_of(element, param.kind):
                    if text.strip():
                        strings.add((param.name, fold(text), clip(text)))
            elif param.type == "token":
                for system, code in _tokens_of(element, param.kind):
                    tokens.add((param.name, clip(system), clip(code)))
            elif param.type == "reference" and isinstance(element, dict):
                parsed = parse_reference(element.get("reference", ""))
                if parsed and parsed.type in RESOURCE_TYPES:
                    references[(param.name, parsed.type, parsed.id)] = parsed
    return IndexRows(
        strings=sorted(strings),
        tokens=sorted(tokens),
        references=[(key[0], ref) for key, ref in sorted(references.items())],
        sort_name=sort_name(resource_type, content),
        positions=extract_positions(resource_type, content),  # HOOK(near)
    )


def sort_name(resource_type: str, content: dict) -> str:
    """The key for `_sort=name`: the first name as a person reads it, folded."""
    rdef = RESOURCES[resource_type]
    if not rdef.sort_name_param:
        return ""
    param = rdef.params[rdef.sort_name_param]
    for element in elements(content, param):
        if param.kind == "HumanName" and isinstance(element, dict):
            family = element.get("family") or ""
            given = " ".join(element.get("given") or [])
            text = f"{family} {given}".strip() or element.get("text") or ""
        else:
            text = element if isinstance(element, str) else ""
        if text.strip():
            return fold(text)[:200]
    return ""
