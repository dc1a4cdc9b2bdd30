"""Constraint (invariant) evaluation with fhirpathpy, each expression compiled once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from ..identifiers import is_valid_npi
from .definitions import definitions

logger = logging.getLogger(__name__)

# Constraints a server cannot evaluate, by key, with why. Listed in data/README.md too.
UNEVALUATED = {
    "txt-1": "htmlChecks() (narrative XHTML rules) is not a FHIRPath function fhirpathpy has",
    "txt-2": "htmlChecks() (narrative XHTML rules) is not a FHIRPath function fhirpathpy has",
    "dom-3": "its R4 expression applies as() to a collection, which fhirpathpy (as FHIRPath "
    "says) refuses; a contained resource its container does not reference is not refused",
}


def _has_value(inputs: list) -> bool:
    """FHIRPath hasValue(), which fhirpathpy lacks: a single primitive that holds a value.

    Primitive extensions without a value reach the engine as a dict ({"extension": [...]}).
    """
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)


OPTIONS = {
    "userInvocationTable": {"hasValue": {"fn": _has_value, "arity": {0: []}}},
    # trace() (used by ref-1) would print to standard output; a server keeps quiet.
    "traceFn": lambda *_: None,
}


@cache
def compiled(expression: str) -> Callable[..., list[Any]]:
    """The expression compiled against the R4 model (cached: writes must stay fast)."""
    return fhirpathpy.compile(expression, models["r4"], OPTIONS)


def _has_children(node: dict[str, Any]) -> bool:
    """ele-1 on a JSON object: it holds when some property other than id has content."""
    return any(key != "id" and value not in (None, []) for key, value in node.items())


def _extension_or_value(node: dict[str, Any]) -> bool:
    """ext-1: an extension has either nested extensions or a value[x], not both."""
    # "_valueString" alone is a value that has only extensions: it exists too.
    has_value = any(key.startswith(("value", "_value")) for key in node)
    return bool(node.get("extension")) != has_value


def _true_without(name: str) -> Callable[[dict[str, Any]], bool | None]:
    """A guard for constraints that only look below `name`: true when the node has none."""
    return lambda node: True if not node.get(name) else None


def _local_reference_only(node: dict[str, Any]) -> bool | None:
    """ref-1 only judges references to contained resources ("#id")."""
    reference = node.get("reference")
    return True if not (isinstance(reference, str) and reference.startswith("#")) else None


def _count(node: dict, name: str) -> int:
    """How many values FHIRPath sees at `name` (a primitive with only extensions counts)."""
    value = node.get(name)
    if isinstance(value, list):
        return sum(item is not None for item in value) or len(node.get(f"_{name}") or [])
    return int(value is not None or f"_{name}" in node)


def _npi_check_digit(node: dict[str, Any]) -> bool | None:
    """us-core-17 (the NPI Luhn check, spelt out digit by digit in FHIRPath) on ten digits."""
    value = node.get("value")
    if isinstance(value, str) and len(value) == 10 and value.isascii() and value.isdigit():
        return is_valid_npi(value)
    return None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range_ordered(node: dict[str, Any]) -> bool | None:
    """rng-2 (`low <= high`) for bounds in the same unit; fhirpathpy 2.2.4 cannot compare
    Quantity values at all (it raises on every Range with both bounds). Bounds in different
    units (a UCUM conversion) or without a value are left to the engine, which fails closed."""
    low, high = node.get("low"), node.get("high")
    if not isinstance(low, dict) or not isinstance(high, dict):
        return True if low is None or high is None else None
    if not (_number(low.get("value")) and _number(high.get("value"))):
        return None
    unit = ("system", "code") if "code" in low or "code" in high else ("system", "unit")
    if any(low.get(k) != high.get(k) for k in unit):
        return None
    return bool(low["value"] <= high["value"])


def _expression_of(key: str) -> str:
    """A constraint's expression as the vendored definitions spell it."""
    return next(
        c["expression"]
        for d in definitions().values()
        for e in d.by_id.values()
        for c in e.constraints
        if c["key"] == key
    )


# Direct evaluations of the constraints every write meets many times (ele-1 on each element,
# ext-1 on each extension, dom-2/4/5 and ref-1 on every resource and reference) or that cost
# milliseconds in the engine (us-core-17, the NPI check digit), keyed by the exact
# expression text so a changed definition falls back to the engine. Each returns the verdict,
# or None to let fhirpathpy decide; tests/directory/test_profiles.py holds every one to the
# engine's answer over the Plan-Net examples and crafted failures.
DIRECT = {
    "hasValue() or (children().count() > id.count())": lambda node: (
        _has_children(node) if isinstance(node, dict) else None
    ),
    "extension.exists() != value.exists()": lambda node: (
        _extension_or_value(node) if isinstance(node, dict) else None
    ),
    "contained.contained.empty()": _true_without("contained"),
    "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()": _true_without(
        "contained"
    ),
    "contained.meta.security.empty()": _true_without("contained"),
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
    "%rootResource.contained.id.trace('ids'))": _local_reference_only,
    _expression_of("us-core-17"): _npi_check_digit,
    _expression_of("rng-2"): _range_ordered,
    # org-1, ipn-1; org-2, org-3 (judged per address or telecom); cpt-2: on every write of an
    # organization, each of its addresses and each contact point of every type.
    "(identifier.count() + name.count()) > 0": lambda node: (
        _count(node, "identifier") + _count(node, "name") > 0
    ),
    "where(use = 'home').empty()": lambda node: node.get("use") != "home",
    "value.empty() or system.exists()": lambda node: (
        not _count(node, "value") or bool(_count(node, "system"))
    ),
}


def holds(expression: str, node: Any, type_path: str, resource: dict) -> bool | None:
    """Whether the constraint holds on `node` (typed as `type_path`); None if it cannot run."""
    direct = DIRECT.get(expression)
    if direct is not None and isinstance(node, dict):
        verdict = direct(node)
        if verdict is not None:
            return verdict
    return holds_by_engine(expression, node, type_path, resource)


def holds_by_engine(expression: str, node: Any, type_path: str, resource: dict) -> bool | None:
    """The constraint's verdict from fhirpathpy alone (the oracle for DIRECT)."""
    context = {"resource": resource, "rootResource": resource}
    try:
        result = compiled(expression)(ResourceNode.create_node(node, type_path), context)
    except Exception:  # the engine's own failures; the caller reports them, never a 500
        logger.warning("FHIRPath constraint could not be evaluated: %s", expression)
        return None
    # An empty result is not a failure: the expression had nothing to judge.
    return result != [False]
