"""Filter parameters as conditions on Resource: each one a semi-join into one index table.

The index kind of the parameter's type (directory/search/index/) builds the condition; this
module resolves the name, checks the modifier and handles the parameters read off the row itself.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import Q, QuerySet

from ..errors import InvalidRequest
from ..models import Resource
from ..registry import RESOURCE_TYPES, SearchParam
from .dates import last_updated_condition
from .index import KINDS
from .plan import Plan
from .values import any_of, or_values, unescape

# Modifiers FHIR defines; one of these we do not implement is an error, not a typo to ignore.
_FHIR_MODIFIERS = {
    "missing",
    "exact",
    "contains",
    "text",
    "not",
    "above",
    "below",
    "in",
    "not-in",
    "of-type",
    "identifier",
    "iterate",
    "type",
}


def filtered(plan: Plan) -> QuerySet:
    """The live resources of the plan's type that meet every filter condition."""
    live, *conditions = filter_conditions(plan)
    rows = Resource.objects.filter(live)
    for condition in conditions:
        rows = rows.filter(condition)
    return rows


def filter_conditions(plan: Plan) -> list[Q]:
    """What `filtered` applies, in order: live resources of the type, then each condition."""
    return [Q(resource_type=plan.resource_type, deleted=False), *plan.conditions]


def supported_modifiers(param: SearchParam) -> frozenset[str]:
    """The modifiers a parameter accepts here (empty when its type cannot be searched)."""
    kind = KINDS.get(param.type)
    return kind.modifiers_for(param) if kind is not None else frozenset()


def filter_condition(plan: Plan, raw_name: str, name: str, modifier: str, value: str) -> Q | None:
    """The condition one filter parameter adds, or None when it is skipped."""
    if name in ("_id", "_lastUpdated"):
        if not _modifier_allowed(plan, raw_name, name, modifier, set()):
            return None
        return _resource_column_condition(raw_name, name, value)
    param = plan.rdef.params.get(name)
    if param is None:
        plan.skip(
            f"Unknown search parameter '{name}' was ignored",
            f"Unknown search parameter '{name}' for {plan.resource_type}",
            expression=raw_name,
        )
        return None
    kind = KINDS.get(param.type)
    if kind is None:
        raise InvalidRequest(
            f"Search parameter '{name}' ({param.type}) is not supported",
            code="not-supported",
            expression=[raw_name],
        )
    if not _modifier_allowed(plan, raw_name, name, modifier, kind.modifiers_for(param)):
        return None
    if modifier == "missing":
        return kind.missing(plan, param, raw_name, value)
    return kind.condition(plan, param, raw_name, modifier, value)


def _resource_column_condition(raw_name: str, name: str, value: str) -> Q:
    """`_id` and `_lastUpdated` are columns of Resource itself, so no index table is involved."""
    if name == "_id":
        return Q(logical_id__in=[unescape(v) for v in or_values(value)])
    return any_of(last_updated_condition(raw_name, v) for v in or_values(value))


def _modifier_allowed(
    plan: Plan, raw_name: str, name: str, modifier: str, allowed: Collection[str]
) -> bool:
    """True when usable; unknown modifiers are skipped, known but unsupported ones refused."""
    if not modifier or modifier in allowed:
        return True
    if modifier in _FHIR_MODIFIERS or modifier in RESOURCE_TYPES:
        raise InvalidRequest(
            f"Modifier ':{modifier}' is not supported on search parameter '{name}'",
            code="not-supported",
            expression=[raw_name],
        )
    plan.skip(
        f"Unknown modifier ':{modifier}' on search parameter '{name}' was ignored",
        expression=raw_name,
    )
    return False
