"""The outside oracle: what a search must return, worked out from the data alone.

Each SearchParameter's own FHIRPath `expression` is evaluated with fhirpathpy (a maintained
engine, independent of the server's indexing) over the vendored resources; what it selects is
then matched against a query value under FHIR R4's search rules (search.html):

- string: starts-with, case- and accent-insensitive, on any string part of what is selected
  (every part of a HumanName or Address); `:exact` is equality, `:contains` a substring;
- token: `code`, `system|code`, `|code` (no system) and `system|` over Coding, CodeableConcept
  (any of its codings), Identifier (system and value), ContactPoint (its value) and primitives;
- reference: `Type/id` or a bare id naming a resource the selected Reference resolves to;
- date: the prefixes compare the range a value denotes with the range of the element (a Period
  with an open end reaches to infinity), as the R4 table of prefixes words it (see _DATE_RULES);
- uri: exact equality.

Nothing here imports the server: an oracle that shared its code could only agree with it.
"""

from __future__ import annotations

import copy
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models

from . import package

R4 = models["r4"]
# Open ends of a Period: earlier and later than any date the data or a query can hold.
NEVER_BEFORE = datetime.min
NEVER_AFTER = datetime.max
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
STRING_PRIMITIVES = {"string", "markdown", "code", "uri", "url", "canonical", "id", "uuid", "oid"}
PRIMITIVES = STRING_PRIMITIVES | {
    "boolean",
    "integer",
    "decimal",
    "positiveInt",
    "unsignedInt",
    "date",
    "dateTime",
    "instant",
    "time",
    "base64Binary",
}


@dataclass(frozen=True)
class Node:
    """One element an expression selected: its FHIR type name and its JSON value."""

    type: str
    value: object


# --- Selection ------------------------------------------------------------------------------


def _branches(expression: str) -> list[str]:
    """The top-level `|` alternatives of an expression.

    fhirpathpy drops the type of what a union selects, so each alternative is evaluated alone.
    """
    parts, depth, quoted, current = [], 0, False, []
    for char in expression:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif not quoted and depth == 0 and char == "|":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


@cache
def _compiled(expression: str) -> tuple[Callable, ...]:
    options = {"returnRawData": True}
    return tuple(compile_fhirpath(b, R4, options) for b in _branches(expression))


@cache
def _private_copy(resource_key: str) -> dict:
    # fhirpathpy may annotate what it evaluates; the vendored resources must stay as loaded.
    return copy.deepcopy(package.RESOURCES[resource_key])


def select(resource: dict, expression: str) -> list[Node]:
    """Every element `expression` selects in `resource`, with its type."""
    return list(_select(package.key(resource), expression))


@cache
def _select(resource_key: str, expression: str) -> tuple[Node, ...]:
    data = _private_copy(resource_key)
    found = []
    for evaluate in _compiled(expression):
        for item in evaluate(data, {}):
            found.append(_node(item))
    return tuple(found)


def _node(item) -> Node:
    type_info = item.get_type_info() if hasattr(item, "get_type_info") else None
    value = item.data if hasattr(item, "data") else item
    if type_info is not None and type_info.name:
        return Node(type_info.name, value)
    return Node(_shape_type(value), value)


def _shape_type(value) -> str:
    """The type of an element fhirpathpy gave no type for, from its JSON shape."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "decimal"
    if isinstance(value, dict):
        if "url" in value and any(k.startswith("value") for k in value):
            return "Extension"
        if "reference" in value:
            return "Reference"
        if "coding" in value:
            return "CodeableConcept"
    raise ValueError(f"cannot tell the FHIR type of selected element {value!r}")


def unwrapped(node: Node) -> list[Node]:
    """An Extension stands for its value[x] (Plan-Net parameters select extensions)."""
    if node.type != "Extension" or not isinstance(node.value, dict):
        return [node]
    for name, value in node.value.items():
        if name.startswith("value") and len(name) > len("value"):
            kind = name[len("value") :]
            primitive = kind[0].lower() + kind[1:]
            return [Node(primitive if primitive in PRIMITIVES else kind, value)]
    return []


def selected(param: dict, resource: dict) -> list[Node]:
    """What the parameter's expression selects in `resource`, extensions standing for values."""
    return [n for node in select(resource, param["expression"]) for n in unwrapped(node)]


# --- String ---------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form, with runs of blanks as one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def string_parts(node: Node) -> list[str]:
    """The strings a string parameter searches in one selected element."""
    if node.type in ("HumanName", "Address"):
        names = HUMAN_NAME_PARTS if node.type == "HumanName" else ADDRESS_PARTS
        parts = []
        for name in names:
            value = node.value.get(name)
            parts += value if isinstance(value, list) else [value] if value else []
        return [p for p in parts if isinstance(p, str)]
    if node.type in STRING_PRIMITIVES:
        return [node.value]
    raise ValueError(f"a string parameter selected a {node.type}")


def string_matches(parts: Iterable[str], value: str, modifier: str = "") -> bool:
    if modifier == "exact":
        return any(part == value for part in parts)
    wanted = fold(value)
    if modifier == "contains":
        return any(wanted in fold(part) for part in parts)
    return any(fold(part).startswith(wanted) for part in parts)


# --- Token ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    system: str | None
    code: str
    has_system: bool = True  # False where FHIR gives the datatype no system (primitives)


def tokens(node: Node) -> list[Token]:
    value = node.value
    if node.type == "CodeableConcept":
        codings = value.get("coding") or []
        return [t for c in codings for t in tokens(Node("Coding", c))]
    if node.type == "Coding":
        return [Token(value.get("system"), value["code"])] if value.get("code") else []
    if node.type == "Identifier":
        return [Token(value.get("system"), value["value"])] if value.get("value") else []
    if node.type == "ContactPoint":
        # Only the value is searched; FHIR leaves what `system|` means here to the server.
        return [Token(None, value["value"], has_system=False)] if value.get("value") else []
    if node.type == "boolean":
        return [Token(None, "true" if value else "false", has_system=False)]
    if node.type in STRING_PRIMITIVES:
        return [Token(None, value, has_system=False)]
    raise ValueError(f"a token parameter selected a {node.type}")


def token_matches(found: Iterable[Token], value: str) -> bool:
    if "|" not in value:
        return any(t.code == value for t in found)
    system, code = value.split("|", 1)
    if not system:
        return any(t.code == code and not t.system for t in found)
    if not code:
        return any(t.system == system for t in found)
    return any(t.system == system and t.code == code for t in found)


# --- Reference ------------------------------------------------------------------------------

_LOCAL_REFERENCE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})$")


def referenced_keys(node: Node) -> list[str]:
    """`Type/id` of the stored resource a selected Reference resolves to (none if it does not)."""
    if node.type != "Reference":
        raise ValueError(f"a reference parameter selected a {node.type}")
    text = (node.value or {}).get("reference") or ""
    text = text.split("/_history/")[0]
    return [text] if _LOCAL_REFERENCE.match(text) and text in package.RESOURCES else []


def reference_matches(keys: Iterable[str], value: str, type_modifier: str = "") -> bool:
    for found in keys:
        found_type, found_id = found.split("/")
        if type_modifier and found_type != type_modifier:
            continue
        if value == found or ("/" not in value and value == found_id):
            return True
    return False


# --- Date -----------------------------------------------------------------------------------


def date_range(text: str) -> tuple[datetime, datetime]:
    """The [start, end) a date or dateTime denotes at its precision (times as UTC)."""
    match = _DATE.match(text)
    if not match:
        raise ValueError(f"not a FHIR date: {text!r}")
    p = match.groupdict()
    year = int(p["year"])
    if p["month"] is None:
        return datetime(year, 1, 1), datetime(year + 1, 1, 1)
    month = int(p["month"])
    if p["day"] is None:
        start = datetime(year, month, 1)
        return start, datetime(year + month // 12, month % 12 + 1, 1)
    start = datetime(year, month, int(p["day"]))
    if p["hour"] is None:
        return start, start + timedelta(days=1)
    start = start.replace(hour=int(p["hour"]), minute=int(p["minute"]))
    if p["second"] is None:
        return start, start + timedelta(minutes=1)
    start = start.replace(second=int(p["second"]))
    return start, start + timedelta(seconds=1)


def date_ranges(node: Node) -> list[tuple[datetime, datetime]]:
    value = node.value
    if node.type in ("date", "dateTime", "instant"):
        return [date_range(value)]
    if node.type == "Period":
        start = date_range(value["start"])[0] if value.get("start") else NEVER_BEFORE
        end = date_range(value["end"])[1] if value.get("end") else NEVER_AFTER
        return [(start, end)]
    raise ValueError(f"a date parameter selected a {node.type}")


def date_matches(ranges: Iterable[tuple[datetime, datetime]], value: str) -> bool:
    prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
    low, high = date_range(text)
    return any(_DATE_RULES[prefix](low, high, start, end) for start, end in ranges)


def _contains(low, high, start, end) -> bool:
    return low <= start and end <= high


# The prefixes of R4 search.html (3.1.1.4.5) compare the search range [low, high) with the
# element's [start, end). gt/lt: the range above/below the search value overlaps the element;
# ge/le: as gt/lt, or as eq (the search range contains the element) -- so a period that begins
# within the searched day and runs on is `ge` that day but not `le` it; sa/eb ask for all of the
# element after/before.
_DATE_RULES = {
    "eq": _contains,
    "ne": lambda low, high, start, end: not _contains(low, high, start, end),
    "gt": lambda low, high, start, end: end > high,
    "lt": lambda low, high, start, end: start < low,
    "ge": lambda low, high, start, end: end > high or _contains(low, high, start, end),
    "le": lambda low, high, start, end: start < low or _contains(low, high, start, end),
    "sa": lambda low, high, start, end: start >= high,
    "eb": lambda low, high, start, end: end <= low,
}


# --- Matching a parameter -------------------------------------------------------------------


def matches(param: dict, resource: dict, value: str, modifier: str = "") -> bool:
    """Whether `resource` meets `param=value` (one value, no commas) by the parameter's own
    expression and FHIR's matching rules for its type."""
    nodes = selected(param, resource)
    kind = param["type"]
    if kind == "string":
        return string_matches([p for n in nodes for p in string_parts(n)], value, modifier)
    if kind == "token":
        return token_matches([t for n in nodes for t in tokens(n)], value)
    if kind == "reference":
        return reference_matches([k for n in nodes for k in referenced_keys(n)], value, modifier)
    if kind == "date":
        return date_matches([r for n in nodes for r in date_ranges(n)], value)
    if kind == "uri":
        return any(n.value == value for n in nodes)
    raise ValueError(f"the oracle has no rule for {kind} parameters ({param['id']})")


def expected(base: str, param: dict, value: str, modifier: str = "") -> set[str]:
    """Ids of the stored resources of type `base` that `param=value` must return."""
    return {r["id"] for r in package.of_type(base) if matches(param, r, value, modifier)}


def references_of(param: dict, resource: dict, target_type: str = "") -> set[str]:
    """`Type/id` of the stored resources `param` points at from `resource`."""
    keys = {k for n in selected(param, resource) for k in referenced_keys(n)}
    return {k for k in keys if not target_type or k.startswith(f"{target_type}/")}


def targets(param: dict) -> list[str]:
    """Types a reference parameter may point at (every stored type when it names none)."""
    return list(param.get("target") or package.TYPES)


# --- Location.near --------------------------------------------------------------------------

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG), as geodesy libraries use for haversine
UNIT_KM = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344, "mi": 1.609344}


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlam = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def positions() -> dict[str, tuple[float, float]]:
    """Location id -> (latitude, longitude) of every stored Location with a position."""
    near = package.definition("Location", "near")
    found = {}
    for location in package.of_type("Location"):
        for node in select(location, near["expression"]):
            found[location["id"]] = (float(node.value["latitude"]), float(node.value["longitude"]))
    return found


def distances_km(lat: float, lon: float) -> dict[str, float]:
    return {lid: haversine_km(lat, lon, *where) for lid, where in positions().items()}
