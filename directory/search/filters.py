"""Filter parameters as conditions on Resource: each one a semi-join into one index table."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from ..errors import InvalidRequest
from ..indexing import parse_reference
from ..models import ReferenceIndex, Resource, StringIndex, TokenIndex
from ..normalize import fold
from ..registry import ID_PATTERN, RESOURCE_TYPES, SearchParam
from .dates import last_updated_condition
from .plan import Plan
from .values import any_of, nothing, or_values, split, unescape

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
_MODIFIERS_BY_TYPE = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "missing"},
    "reference": {"missing"},
}
_INDEX_MODELS = {"string": StringIndex, "token": TokenIndex, "reference": ReferenceIndex}


def filtered(plan: Plan) -> QuerySet:
    """The live resources of the plan's type that meet every filter condition."""
    rows = Resource.objects.filter(resource_type=plan.resource_type, deleted=False)
    for condition in plan.conditions:
        rows = rows.filter(condition)
    return rows


def filter_condition(plan: Plan, raw_name: str, name: str, modifier: str, value: str):
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
    allowed = set(_MODIFIERS_BY_TYPE[param.type])
    if param.type == "reference":
        allowed |= set(param.targets)
    if not _modifier_allowed(plan, raw_name, name, modifier, allowed):
        return None
    if modifier == "missing":
        return _missing_condition(plan, param, raw_name, value)
    builder = {
        "string": _string_condition,
        "token": _token_condition,
        "reference": _reference_condition,
    }[param.type]
    return builder(plan, param, raw_name, modifier, value)


def _resource_column_condition(raw_name: str, name: str, value: str) -> Q:
    """`_id` and `_lastUpdated` are columns of Resource itself, so no index table is involved."""
    if name == "_id":
        return Q(logical_id__in=[unescape(v) for v in or_values(value)])
    return any_of(last_updated_condition(raw_name, v) for v in or_values(value))


def _modifier_allowed(plan: Plan, raw_name: str, name: str, modifier: str, allowed: set) -> bool:
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


def _index_rows(plan: Plan, param: SearchParam):
    """The rows the parameter's index table holds for it on this resource type."""
    model = _INDEX_MODELS[param.type]
    return model.objects.filter(resource_type=plan.resource_type, param=param.name)


def _semi_join(rows, negate: bool = False) -> Q:
    condition = Q(pk__in=rows.values("resource_id"))
    return ~condition if negate else condition


def _missing_condition(plan: Plan, param: SearchParam, raw_name: str, value: str) -> Q:
    if value not in ("true", "false"):
        raise InvalidRequest(f"'{raw_name}' must be true or false, not '{value}'")
    return _semi_join(_index_rows(plan, param), negate=value == "true")


def _string_condition(plan, param, raw_name, modifier, value) -> Q:
    matches = any_of(_string_match(modifier, unescape(v)) for v in or_values(value))
    return _semi_join(_index_rows(plan, param).filter(matches))


def _string_match(modifier: str, text: str) -> Q:
    """`:exact` compares the stored text as written; otherwise the folded form is searched."""
    if modifier == "exact":
        return Q(exact=text)
    if modifier == "contains":
        return Q(value__contains=fold(text))
    return Q(value__startswith=fold(text))


def _token_condition(plan, param, raw_name, modifier, value) -> Q:
    matches = any_of(_token_match(param, raw_name, v) for v in or_values(value))
    return _semi_join(_index_rows(plan, param).filter(matches), negate=modifier == "not")


def _token_match(param: SearchParam, raw_name: str, text: str) -> Q:
    parts = split(text, "|")
    if len(parts) > 2:
        raise InvalidRequest(f"'{raw_name}' value '{text}' has more than one '|'")
    if param.kind == "boolean" and (len(parts) != 1 or parts[0] not in ("true", "false")):
        raise InvalidRequest(f"'{raw_name}' must be true or false, not '{text}'")
    if len(parts) == 1:
        return Q(code=unescape(parts[0]))
    system, code = (unescape(p) for p in parts)
    if not code:
        return Q(system=system)
    return Q(system=system, code=code)


def _reference_condition(plan, param, raw_name, modifier, value) -> Q:
    values = [unescape(v) for v in or_values(value)]
    matches = any_of(_reference_match(param, raw_name, modifier, v) for v in values)
    return _semi_join(_index_rows(plan, param).filter(matches))


def _reference_match(param: SearchParam, raw_name: str, type_modifier: str, text: str) -> Q:
    """A `Type/id` names its type; a bare id takes the `:Type` modifier or the only target."""
    parsed = parse_reference(text)
    if parsed is not None:
        if type_modifier and parsed.type != type_modifier:
            return nothing()
        return Q(target_type=parsed.type, target_id=parsed.id)
    target_id = _checked_id(raw_name, text)
    if type_modifier:
        return Q(target_type=type_modifier, target_id=target_id)
    if len(param.targets) == 1:
        return Q(target_type=param.targets[0], target_id=target_id)
    return Q(target_id=target_id)


def _checked_id(raw_name: str, text: str) -> str:
    if not ID_PATTERN.match(text):
        raise InvalidRequest(
            f"'{raw_name}' value '{text}' is not a reference (Type/id, id or an absolute URL)"
        )
    return text
