"""Reading a request's parameters into a Plan: names, modifiers, result parameters, strictness."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings

from ..errors import InvalidRequest
from ..numbers import capped_integer
from ..registry import RESOURCES
from . import chains
from .filters import filter_condition
from .includes import parse_include
from .near import SORT_KEY as NEAR_SORT_KEY
from .near import check_sort as check_near_sort
from .plan import SORT_FIELDS, Plan

# Accepted for the HTTP layer's sake (output format), meaningless to the search itself.
_NO_OP_PARAMS = {"_format", "_pretty"}
_RESULT_PARAMS = ("_sort", "_count", "_total", "_summary", "_elements", "_include", "_revinclude")
_INCLUDES = ("_include", "_revinclude")
_TOTAL_MODES = {"none", "estimate", "accurate"}
_SUMMARY_MODES = {"true", "false", "text", "data", "count"}
_ELEMENT = re.compile(r"^(?:[A-Z][A-Za-z]+\.)?(?P<name>[A-Za-z][A-Za-z0-9_]*)$")


def parse(
    resource_type: str,
    pairs: Iterable[tuple[object, object]],
    *,
    strict: bool,
    filters_only: bool = False,
) -> Plan:
    """The plan for a search of `resource_type` with these (name, value) pairs."""
    rdef = RESOURCES.get(resource_type)
    if rdef is None:
        raise InvalidRequest(f"Unknown resource type '{resource_type}'")
    plan = Plan(resource_type, rdef, strict, filters_only)
    for raw_name, value in pairs:
        _parse_one(plan, str(raw_name), str(value))
    check_near_sort(plan)  # `_sort=near` needs a `near` filter, in any order
    return plan


def self_params(plan: Plan) -> list[tuple[str, str]]:
    """Applied parameters in a canonical order: filters by name, then result parameters."""
    params = sorted(plan.filter_params, key=lambda pair: pair[0])
    for name in (*_RESULT_PARAMS, *(f"{n}:iterate" for n in _INCLUDES)):
        params += [(name, value) for value in plan.result_params.get(name, [])]
    return params


def _parse_one(plan: Plan, raw_name: str, value: str) -> None:
    if "\x00" in raw_name or "\x00" in value:
        raise InvalidRequest(f"Search parameter '{raw_name}' contains a NUL character")
    name, _, modifier = raw_name.partition(":")
    if name in _NO_OP_PARAMS:
        return
    if name == "_cursor" or name in _RESULT_PARAMS:
        if plan.filters_only:
            raise InvalidRequest(f"'{name}' is not allowed in conditional criteria")
        _parse_control(plan, name, modifier, value)
        return
    if value == "":
        plan.ignored.append(f"Search parameter '{raw_name}' has no value and was ignored")
        return
    if chains.is_chained(raw_name):
        condition = chains.condition(plan, raw_name, value)
    else:
        condition = filter_condition(plan, raw_name, name, modifier, value)
    if condition is not None:
        plan.conditions.append(condition)
        plan.filter_params.append((raw_name, value))


def _parse_control(plan: Plan, name: str, modifier: str, value: str) -> None:
    """A result parameter or `_cursor`; only the includes take a modifier, `:iterate`."""
    if modifier and not (name in _INCLUDES and modifier == "iterate"):
        plan.skip(
            f"Modifier ':{modifier}' on '{name}' is not supported and was ignored",
            expression=f"{name}:{modifier}",
        )
        return
    if name == "_cursor":
        plan.cursor = value
        return
    if name in _INCLUDES:
        parse_include(plan, name, value, iterated=bool(modifier))
        key = f"{name}:{modifier}" if modifier else name
        plan.result_params.setdefault(key, []).append(value)
        return
    if name in plan.result_params:
        plan.skip(f"Repeated '{name}': only the last value was used")
    {
        "_count": _parse_count,
        "_sort": _parse_sort,
        "_total": _parse_total,
        "_summary": _parse_summary,
        "_elements": _parse_elements,
    }[name](plan, value)


def _parse_count(plan: Plan, value: str) -> None:
    count = capped_integer(value, settings.FHIR_MAX_COUNT)
    if count is None:
        raise InvalidRequest(
            f"_count must be a non-negative integer, not '{value[:40]}'", expression=["_count"]
        )
    plan.count = count
    plan.result_params["_count"] = [str(plan.count)]


def _parse_sort(plan: Plan, value: str) -> None:
    keys, seen = [], set()
    for item in (v.strip() for v in value.split(",")):
        descending = item.startswith("-")
        key = item[1:] if descending else item
        if key not in SORT_FIELDS and key != NEAR_SORT_KEY:
            raise InvalidRequest(
                f"_sort key '{key}' is not supported; use _id, _lastUpdated, name or near",
                expression=["_sort"],
            )
        if key == "name" and not plan.rdef.sort_name_param:
            raise InvalidRequest(
                f"{plan.resource_type} cannot be sorted by name", expression=["_sort"]
            )
        if key not in seen:
            seen.add(key)
            keys.append((key, descending))
    plan.sort = keys
    plan.result_params["_sort"] = [",".join(("-" if d else "") + k for k, d in keys)]


def _parse_total(plan: Plan, value: str) -> None:
    if value not in _TOTAL_MODES:
        raise InvalidRequest(
            f"_total must be none, estimate or accurate, not '{value}'", expression=["_total"]
        )
    plan.total_mode = value
    plan.result_params["_total"] = [value]


def _parse_summary(plan: Plan, value: str) -> None:
    if value not in _SUMMARY_MODES:
        raise InvalidRequest(
            f"_summary must be true, text, data, count or false, not '{value}'",
            expression=["_summary"],
        )
    plan.summary = None if value == "false" else value
    plan.result_params["_summary"] = [value]


def _parse_elements(plan: Plan, value: str) -> None:
    names = set()
    for item in (v.strip() for v in value.split(",") if v.strip()):
        match = _ELEMENT.match(item)
        if not match:
            raise InvalidRequest(
                f"_elements entry '{item}' is not an element name", expression=["_elements"]
            )
        names.add(match.group("name"))
    plan.elements = names or None
    if names:
        plan.result_params["_elements"] = [",".join(sorted(names))]
