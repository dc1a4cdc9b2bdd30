"""Which resource types a search reads: the types it returns and the types it matches on.

Authorization needs this before the search runs. It reads the raw parameters, not the parsed
plan, so that parameters the engine refuses or ignores (an unknown chain, `_has`,
`_include:iterate`) still count: a request is judged by everything it asks for, never only by
what this version of the engine happens to evaluate.

Where a value cannot be resolved to types (an unknown source type, a parameter that is not a
reference) nothing is added: the search itself refuses such values, so they return nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from ..registry import RESOURCE_TYPES, RESOURCES, SearchParam

INCLUDE_NAMES = ("_include", "_revinclude")
HAS_PREFIX = "_has:"
# `_has` nests (`_has:A:ref:_has:B:ref:param`); deeper than this is refused by the caller's
# scope check because every level names a type, and parsing stops here so a hostile name cannot
# make this loop long. The search refuses (400) a parameter with this many chain or `_has` hops.
MAX_HAS_DEPTH = 8
# Parameters every type has; a chain may end in them whatever its last target is.
COMMON_NAMES = ("_id", "_lastUpdated")


@dataclass
class Reach:
    """Types whose resources a search returns, and types it only searches to match."""

    returned: set[str] = field(default_factory=set)
    matched: set[str] = field(default_factory=set)


def reach(resource_type: str, pairs: list[tuple[str, str]]) -> Reach:
    """The types a search of `resource_type` with these parameters returns and matches on."""
    result = Reach(returned={resource_type}, matched={resource_type})
    for raw_name, value in pairs:
        name = raw_name.partition(":")[0]
        if name in INCLUDE_NAMES:
            result.returned |= _include_types(resource_type, name, value)
        elif raw_name.startswith(HAS_PREFIX):
            result.matched |= _has_types(raw_name)
        elif "." in raw_name:
            result.matched |= _chain_types(resource_type, raw_name)
    if any(raw_name.partition(":")[2] == "iterate" for raw_name, _ in pairs):
        result.returned |= _iterated_types(result.returned, pairs)
    return result


def link_targets(param: SearchParam, explicit: str, next_name: str) -> list[str]:
    """Types a chain link `param[:explicit]` continues into to evaluate `next_name` there.

    The search engine (chains.py) follows exactly these, so authorization checks what is read.
    A parameter with no declared target (any type) continues into every type having the next
    parameter.
    """
    candidates = list(param.targets) or list(RESOURCE_TYPES)
    if explicit:
        candidates = [explicit] if explicit in candidates else []
    return [t for t in candidates if t in RESOURCES and _defines(t, next_name)]


def _defines(resource_type: str, raw_name: str) -> bool:
    if raw_name.startswith(HAS_PREFIX):
        return False  # a chain ending in `_has` is refused by the search
    name = raw_name.partition(":")[0]
    return name in COMMON_NAMES or name in RESOURCES[resource_type].params


def _reference_params(source: str, param_name: str) -> list[SearchParam]:
    rdef = RESOURCES.get(source)
    if rdef is None:
        return []
    if param_name == "*":
        return rdef.reference_params
    param = rdef.params.get(param_name)
    return [param] if param is not None and param.type == "reference" else []


def _include_types(resource_type: str, name: str, value: str) -> set[str]:
    """`_include=Source:param[:Target]` returns targets; `_revinclude` returns sources."""
    if value == "*":
        value = f"{resource_type}:*"
    parts = value.split(":")
    if len(parts) not in (2, 3):
        return set()
    source, param_name = parts[0], parts[1]
    params = _reference_params(source, param_name)
    if not params:
        return set()
    if name == "_revinclude":
        return {source}
    if len(parts) == 3:
        # A target the parameter cannot point at is refused by the search: it returns nothing.
        return {parts[2]} if any(parts[2] in _targets(param) for param in params) else set()
    return {target for param in params for target in _targets(param)}


def _targets(param: SearchParam) -> tuple[str, ...]:
    return param.targets or RESOURCE_TYPES


def _iterated_types(returned: set[str], pairs: list[tuple[str, str]]) -> set[str]:
    """`_include:iterate=*` follows every reference of every returned type, until nothing new."""
    found = set(returned)
    wildcards = [v for n, v in pairs if n == "_include:iterate" and v == "*"]
    for _ in range(len(RESOURCE_TYPES)):
        added = {
            t for source in found for v in wildcards for t in _include_types(source, "_include", v)
        }
        if added <= found:
            break
        found |= added
    return found


def _chain_types(resource_type: str, raw_name: str) -> set[str]:
    """Every type along a chain such as `practitioner.name` or `location:Location.partof.name`."""
    types: set[str] = set()
    current = {resource_type}
    links = raw_name.split(".")
    for link, next_link in pairwise(links):
        param_name, _, explicit = link.partition(":")
        current = {
            target
            for source in current
            for param in _reference_params(source, param_name)
            for target in link_targets(param, explicit, next_link)
        }
        types |= current
    return types


def _has_types(raw_name: str) -> set[str]:
    """The referring types of `_has:Type:ref:param`, at every nesting level."""
    types: set[str] = set()
    rest, source = raw_name, ""
    for _ in range(MAX_HAS_DEPTH):
        if not rest.startswith(HAS_PREFIX):
            if "." in rest and source in RESOURCES:
                # `_has:Type:ref:chain.param` also reads the chain's types.
                types |= _chain_types(source, rest)
            break
        parts = rest[len(HAS_PREFIX) :].split(":", 2)
        if len(parts) < 3 or parts[0] not in RESOURCES:
            break  # refused by the search: it reads nothing
        source, rest = parts[0], parts[2]
        types.add(source)
    # Deeper than the bound, the search refuses the parameter (400) before reading anything, so
    # the levels past it add no type.
    return types
