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

from ..registry import RESOURCES, SearchParam

INCLUDE_NAMES = ("_include", "_revinclude")
HAS_PREFIX = "_has:"
# `_has` nests (`_has:A:ref:_has:B:ref:param`); deeper than this is refused by the caller's
# scope check because every level names a type, and parsing stops here so a hostile name cannot
# make this loop long.
MAX_HAS_DEPTH = 8


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
            result.returned |= _include_types(name, value)
        elif raw_name.startswith(HAS_PREFIX):
            result.matched |= _has_types(raw_name)
        elif "." in raw_name:
            result.matched |= _chain_types(resource_type, raw_name)
    return result


def _reference_params(source: str, param_name: str) -> list[SearchParam]:
    rdef = RESOURCES.get(source)
    if rdef is None:
        return []
    if param_name == "*":
        return rdef.reference_params
    param = rdef.params.get(param_name)
    return [param] if param is not None and param.type == "reference" else []


def _include_types(name: str, value: str) -> set[str]:
    """`_include=Source:param[:Target]` returns targets; `_revinclude` returns sources."""
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
        return {parts[2]} if any(parts[2] in param.targets for param in params) else set()
    return {target for param in params for target in param.targets}


def _chain_types(resource_type: str, raw_name: str) -> set[str]:
    """Every type along a chain such as `practitioner.name` or `location:Location.partof.name`."""
    types: set[str] = set()
    current = {resource_type}
    links = raw_name.split(".")
    for link in links[:-1]:
        param_name, _, explicit = link.partition(":")
        targets = {
            target
            for source in current
            for param in _reference_params(source, param_name)
            for target in param.targets
        }
        current = {explicit} if explicit else targets
        types |= current
    return types


def _has_types(raw_name: str) -> set[str]:
    """The referring types of `_has:Type:ref:param`, at every nesting level."""
    types: set[str] = set()
    rest = raw_name
    for _ in range(MAX_HAS_DEPTH):
        if not rest.startswith(HAS_PREFIX):
            break
        parts = rest[len(HAS_PREFIX) :].split(":", 2)
        if len(parts) < 3:
            break
        types.add(parts[0])
        rest = parts[2]
    else:
        # Nested deeper than anyone needs: name a type nobody is granted, so it is refused.
        types.add("_has-too-deep")
    return types
