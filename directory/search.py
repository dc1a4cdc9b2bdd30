"""FHIR R4 search: parameters evaluated on the index tables, paging that holds under writes.

Every filter is a semi-join from Resource into one index table, so a search is a handful of index
lookups whatever the size of the directory. Unsorted searches and `_sort=_id` page by keyset on an
immutable key; searches sorted on mutable keys page through a snapshot taken on the first page.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from functools import cache

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .errors import InvalidRequest
from .indexing import parse_reference
from .models import (
    ReferenceIndex,
    Resource,
    SearchSnapshot,
    SearchSnapshotEntry,
    StringIndex,
    TokenIndex,
)
from .normalize import fold
from .registry import RESOURCE_TYPES, RESOURCES, ResourceDef, SearchParam

CURSOR_SALT = "fhir-search-cursor"
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
# Accepted for the HTTP layer's sake (output format), meaningless to the search itself.
_NO_OP_PARAMS = {"_format", "_pretty"}
_RESULT_PARAMS = ("_sort", "_count", "_total", "_summary", "_elements", "_include", "_revinclude")
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
_SORT_FIELDS = {"_id": "logical_id", "_lastUpdated": "last_updated", "name": "sort_name"}
_TOTAL_MODES = {"none", "estimate", "accurate"}
_SUMMARY_MODES = {"true", "false", "text", "data", "count"}
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ELEMENT = re.compile(r"^(?:[A-Z][A-Za-z]+\.)?(?P<name>[A-Za-z][A-Za-z0-9_]*)$")
_DIGITS = re.compile(r"^[0-9]+$")
_DATE = re.compile(
    r"^(?P<prefix>[a-z]{2})?(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+\- ]\d{2}:\d{2})?)?)?)?$"
)
_DATE_PREFIXES = {"eq", "ne", "lt", "le", "gt", "ge", "sa", "eb"}


# ---------------------------------------------------------------- interface


@dataclass
class SearchRequest:
    resource_type: str
    params: list[tuple[str, str]]
    strict: bool = False


@dataclass
class SearchEntry:
    row: Resource
    mode: str
    content: dict


@dataclass
class SearchResult:
    entries: list[SearchEntry]
    total: int | None
    self_params: list[tuple[str, str]]
    next_params: list[tuple[str, str]] | None
    previous_params: list[tuple[str, str]] | None
    first_params: list[tuple[str, str]]
    ignored: list[str]
    summary_count: bool


def search(request: SearchRequest) -> SearchResult:
    """Run one search request: the matches of one page, their includes, totals and page links."""
    plan = _parse(request.resource_type, request.params, strict=request.strict)
    matches = _filtered(plan)
    self_params = _self_params(plan)
    if plan.summary == "count" or plan.page_size == 0:
        return _count_only_result(plan, matches, self_params)
    page = _page(plan, matches)
    entries = [SearchEntry(row, "match", _shape_match(plan, row)) for row in page.rows]
    entries += [
        SearchEntry(row, "include", _shape_include(plan, row))
        for row in _included_rows(plan, page.rows)
    ]
    return SearchResult(
        entries=entries,
        total=page.total,
        self_params=self_params,
        next_params=_link_params(plan, self_params, page.next_state),
        previous_params=_link_params(plan, self_params, page.previous_state),
        first_params=self_params,
        ignored=plan.ignored,
        summary_count=False,
    )


def matching_rows(resource_type: str, pairs: list[tuple[str, str]], limit: int) -> list[Resource]:
    """Live resources matching filter criteria (conditional create); strict, no result params."""
    plan = _parse(resource_type, pairs, strict=True, filters_only=True)
    return list(_filtered(plan).order_by("pk")[:limit])


# ---------------------------------------------------------------- parsed request


@dataclass(frozen=True)
class _Include:
    source_type: str
    params: tuple[str, ...]
    target_type: str | None


@dataclass
class _Plan:
    resource_type: str
    rdef: ResourceDef
    strict: bool
    filters_only: bool = False
    conditions: list[Q] = field(default_factory=list)
    filter_params: list[tuple[str, str]] = field(default_factory=list)
    result_params: dict[str, list[str]] = field(default_factory=dict)
    count: int | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)
    total_mode: str = "accurate"
    summary: str | None = None
    elements: set[str] | None = None
    includes: list[_Include] = field(default_factory=list)
    revincludes: list[_Include] = field(default_factory=list)
    cursor: str | None = None
    ignored: list[str] = field(default_factory=list)

    @property
    def page_size(self) -> int:
        return settings.FHIR_DEFAULT_COUNT if self.count is None else self.count

    def skip(self, note: str, strict_message: str | None = None):
        """Lenient: record why a parameter was ignored. Strict: refuse the request."""
        if self.strict:
            raise InvalidRequest(strict_message or note.replace(" was ignored", ""))
        self.ignored.append(note)


def _parse(resource_type: str, pairs, *, strict: bool, filters_only: bool = False) -> _Plan:
    rdef = RESOURCES.get(resource_type)
    if rdef is None:
        raise InvalidRequest(f"Unknown resource type '{resource_type}'")
    plan = _Plan(resource_type, rdef, strict, filters_only)
    for raw_name, value in pairs:
        _parse_one(plan, str(raw_name), str(value))
    return plan


def _parse_one(plan: _Plan, raw_name: str, value: str):
    if "\x00" in raw_name or "\x00" in value:
        raise InvalidRequest(f"Search parameter '{raw_name}' contains a NUL character")
    name, _, modifier = raw_name.partition(":")
    if name in _NO_OP_PARAMS:
        return
    if name == "_cursor" or name in _RESULT_PARAMS:
        if plan.filters_only:
            raise InvalidRequest(f"'{name}' is not allowed in conditional criteria")
        _parse_control(plan, raw_name, name, modifier, value)
        return
    if value == "":
        plan.ignored.append(f"Search parameter '{raw_name}' has no value and was ignored")
        return
    condition = _filter_condition(plan, raw_name, name, modifier, value)
    if condition is not None:
        plan.conditions.append(condition)
        plan.filter_params.append((raw_name, value))


# ---------------------------------------------------------------- value syntax


def _split(value: str, separator: str) -> list[str]:
    """Split on `separator` where it is not escaped by a backslash; escapes stay in the parts."""
    parts, start, i = [], 0, 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == separator:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _or_values(value: str) -> list[str]:
    """The comma-separated alternatives of one parameter value, escapes still in place."""
    return [part for part in _split(value, ",") if part != ""]


# ---------------------------------------------------------------- filters


def _filter_condition(plan: _Plan, raw_name: str, name: str, modifier: str, value: str):
    if name == "_id":
        if not _modifier_allowed(plan, raw_name, name, modifier, set()):
            return None
        return Q(logical_id__in=[_unescape(v) for v in _or_values(value)])
    if name == "_lastUpdated":
        if not _modifier_allowed(plan, raw_name, name, modifier, set()):
            return None
        return _or(_date_condition(raw_name, v) for v in _or_values(value))
    param = plan.rdef.params.get(name)
    if param is None:
        plan.skip(
            f"Unknown search parameter '{name}' was ignored",
            f"Unknown search parameter '{name}' for {plan.resource_type}",
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


def _modifier_allowed(plan: _Plan, raw_name: str, name: str, modifier: str, allowed: set) -> bool:
    """True when usable; unknown modifiers are skipped, known but unsupported ones refused."""
    if not modifier or modifier in allowed:
        return True
    if modifier in _FHIR_MODIFIERS or modifier in RESOURCE_TYPES:
        raise InvalidRequest(
            f"Modifier ':{modifier}' is not supported on search parameter '{name}'",
            code="not-supported",
            expression=[raw_name],
        )
    plan.skip(f"Unknown modifier ':{modifier}' on search parameter '{name}' was ignored")
    return False


def _or(conditions) -> Q:
    combined = Q(pk__in=[])
    for condition in conditions:
        combined |= condition
    return combined


def _index_rows(model, plan: _Plan, param: SearchParam):
    return model.objects.filter(resource_type=plan.resource_type, param=param.name)


def _semi_join(rows, negate: bool = False) -> Q:
    condition = Q(pk__in=rows.values("resource_id"))
    return ~condition if negate else condition


def _missing_condition(plan: _Plan, param: SearchParam, raw_name: str, value: str) -> Q:
    if value not in ("true", "false"):
        raise InvalidRequest(f"'{raw_name}' must be true or false, not '{value}'")
    model = {"string": StringIndex, "token": TokenIndex, "reference": ReferenceIndex}[param.type]
    return _semi_join(_index_rows(model, plan, param), negate=value == "true")


def _string_condition(plan, param, raw_name, modifier, value) -> Q:
    matches = Q(pk__in=[])
    for text in (_unescape(v) for v in _or_values(value)):
        if modifier == "exact":
            matches |= Q(exact=text)
        elif modifier == "contains":
            matches |= Q(value__contains=fold(text))
        else:
            matches |= Q(value__startswith=fold(text))
    return _semi_join(_index_rows(StringIndex, plan, param).filter(matches))


def _token_condition(plan, param, raw_name, modifier, value) -> Q:
    matches = _or(_token_match(param, raw_name, v) for v in _or_values(value))
    return _semi_join(
        _index_rows(TokenIndex, plan, param).filter(matches), negate=modifier == "not"
    )


def _token_match(param: SearchParam, raw_name: str, text: str) -> Q:
    parts = _split(text, "|")
    if len(parts) > 2:
        raise InvalidRequest(f"'{raw_name}' value '{text}' has more than one '|'")
    if param.kind == "boolean" and (len(parts) != 1 or parts[0] not in ("true", "false")):
        raise InvalidRequest(f"'{raw_name}' must be true or false, not '{text}'")
    if len(parts) == 1:
        return Q(code=_unescape(parts[0]))
    system, code = (_unescape(p) for p in parts)
    if not code:
        return Q(system=system)
    return Q(system=system, code=code)


def _reference_condition(plan, param, raw_name, modifier, value) -> Q:
    values = [_unescape(v) for v in _or_values(value)]
    matches = _or(_reference_match(param, raw_name, modifier, v) for v in values)
    return _semi_join(_index_rows(ReferenceIndex, plan, param).filter(matches))


def _reference_match(param: SearchParam, raw_name: str, type_modifier: str, text: str) -> Q:
    parsed = parse_reference(text)
    if type_modifier:
        if parsed is not None:
            return (
                Q(target_type=type_modifier, target_id=parsed.id)
                if (parsed.type == type_modifier)
                else Q(pk__in=[])
            )
        return Q(target_type=type_modifier, target_id=_checked_id(raw_name, text))
    if parsed is not None:
        return Q(target_type=parsed.type, target_id=parsed.id)
    target_id = _checked_id(raw_name, text)
    if len(param.targets) == 1:
        return Q(target_type=param.targets[0], target_id=target_id)
    return Q(target_id=target_id)


def _checked_id(raw_name: str, text: str) -> str:
    if not _ID.match(text):
        raise InvalidRequest(
            f"'{raw_name}' value '{text}' is not a reference (Type/id, id or an absolute URL)"
        )
    return text


# ---------------------------------------------------------------- dates


def _date_condition(raw_name: str, text: str) -> Q:
    prefix, start, end = _date_range(raw_name, text)
    return {
        "eq": Q(last_updated__gte=start, last_updated__lt=end),
        "ne": Q(last_updated__lt=start) | Q(last_updated__gte=end),
        "lt": Q(last_updated__lt=start),
        "eb": Q(last_updated__lt=start),
        "le": Q(last_updated__lt=end),
        "gt": Q(last_updated__gte=end),
        "sa": Q(last_updated__gte=end),
        "ge": Q(last_updated__gte=start),
    }[prefix]


def _date_range(raw_name: str, text: str) -> tuple[str, datetime, datetime]:
    """The prefix and the [start, end) interval a partial date or dateTime denotes."""
    match = _DATE.match(text)
    if not match:
        raise InvalidRequest(
            f"'{raw_name}' value '{text}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)",
            expression=[raw_name],
        )
    parts = match.groupdict()
    prefix = parts["prefix"] or "eq"
    if prefix not in _DATE_PREFIXES:
        raise InvalidRequest(
            f"'{raw_name}' has unsupported prefix '{prefix}'; use eq, ne, lt, le, gt, ge, sa or eb",
            expression=[raw_name],
        )
    try:
        start, end = _interval(parts)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"'{raw_name}' value '{text}' is not a valid date") from None
    return prefix, start, end


def _interval(parts: dict) -> tuple[datetime, datetime]:
    zone = _zone(parts["tz"])
    year = int(parts["year"])
    if parts["month"] is None:
        return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    month = int(parts["month"])
    if parts["day"] is None:
        start = datetime(year, month, 1, tzinfo=zone)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        return start, following
    day = int(parts["day"])
    if parts["hour"] is None:
        start = datetime(year, month, day, tzinfo=zone)
        return start, start + timedelta(days=1)
    fraction = (parts["fraction"] or "")[:6]
    start = datetime(
        year,
        month,
        day,
        int(parts["hour"]),
        int(parts["minute"]),
        int(parts["second"] or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
        tzinfo=zone,
    )
    if parts["second"] is None:
        return start, start + timedelta(minutes=1)
    if not fraction:
        return start, start + timedelta(seconds=1)
    return start, start + timedelta(microseconds=10 ** (6 - len(fraction)))


def _zone(text: str | None):
    """UTC when absent; a space stands for '+' that form decoding turned into a blank."""
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return dt_timezone(sign * timedelta(hours=hours, minutes=minutes))


# ---------------------------------------------------------------- result parameters


def _parse_control(plan: _Plan, raw_name: str, name: str, modifier: str, value: str):
    if modifier:
        plan.skip(f"Modifier ':{modifier}' on '{name}' is not supported and was ignored")
        return
    if name == "_cursor":
        plan.cursor = value
        return
    if name in ("_include", "_revinclude"):
        _parse_include(plan, name, value)
        plan.result_params.setdefault(name, []).append(value)
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


def _parse_count(plan: _Plan, value: str):
    if not _DIGITS.match(value):
        raise InvalidRequest(
            f"_count must be a non-negative integer, not '{value}'", expression=["_count"]
        )
    plan.count = min(int(value), settings.FHIR_MAX_COUNT)
    plan.result_params["_count"] = [str(plan.count)]


def _parse_sort(plan: _Plan, value: str):
    keys, seen = [], set()
    for item in (v.strip() for v in value.split(",")):
        descending = item.startswith("-")
        key = item[1:] if descending else item
        if key not in _SORT_FIELDS:
            raise InvalidRequest(
                f"_sort key '{key}' is not supported; use _id, _lastUpdated or name",
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


def _parse_total(plan: _Plan, value: str):
    if value not in _TOTAL_MODES:
        raise InvalidRequest(
            f"_total must be none, estimate or accurate, not '{value}'", expression=["_total"]
        )
    plan.total_mode = value
    plan.result_params["_total"] = [value]


def _parse_summary(plan: _Plan, value: str):
    if value not in _SUMMARY_MODES:
        raise InvalidRequest(
            f"_summary must be true, text, data, count or false, not '{value}'",
            expression=["_summary"],
        )
    plan.summary = None if value == "false" else value
    plan.result_params["_summary"] = [value]


def _parse_elements(plan: _Plan, value: str):
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


def _parse_include(plan: _Plan, name: str, value: str):
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[0] not in RESOURCES:
        raise InvalidRequest(
            f"{name} value '{value}' must be Type:param or Type:param:Target", expression=[name]
        )
    source, param_name = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if name == "_include":
        plan.includes.append(_forward_include(plan, value, source, param_name, target))
    else:
        plan.revincludes.append(_reverse_include(plan, value, source, param_name, target))


def _reference_params(source: str, param_name: str, value: str, name: str) -> list[SearchParam]:
    rdef = RESOURCES[source]
    if param_name == "*":
        return rdef.reference_params
    param = rdef.params.get(param_name)
    if param is None or param.type != "reference":
        raise InvalidRequest(
            f"{name} '{value}': {source} has no reference parameter '{param_name}'",
            expression=[name],
        )
    return [param]


def _forward_include(plan, value, source, param_name, target) -> _Include:
    if source != plan.resource_type:
        raise InvalidRequest(
            f"_include '{value}' must start with {plan.resource_type} "
            "(_include:iterate is not supported)",
            expression=["_include"],
        )
    params = _reference_params(source, param_name, value, "_include")
    if target is not None and not any(target in p.targets for p in params):
        raise InvalidRequest(
            f"_include '{value}': {target} is not a target of {param_name}", expression=["_include"]
        )
    return _Include(source, tuple(p.name for p in params), target)


def _reverse_include(plan, value, source, param_name, target) -> _Include:
    if target is not None and target != plan.resource_type:
        raise InvalidRequest(
            f"_revinclude '{value}' must target {plan.resource_type}", expression=["_revinclude"]
        )
    params = [
        p
        for p in _reference_params(source, param_name, value, "_revinclude")
        if plan.resource_type in p.targets
    ]
    if not params:
        raise InvalidRequest(
            f"_revinclude '{value}' cannot refer to {plan.resource_type}",
            expression=["_revinclude"],
        )
    return _Include(source, tuple(p.name for p in params), plan.resource_type)


def _self_params(plan: _Plan) -> list[tuple[str, str]]:
    """Applied parameters in a canonical order: filters by name, then result parameters."""
    params = sorted(plan.filter_params, key=lambda pair: pair[0])
    for name in _RESULT_PARAMS:
        params += [(name, value) for value in plan.result_params.get(name, [])]
    return params


# ---------------------------------------------------------------- matching and totals


def _filtered(plan: _Plan) -> QuerySet:
    rows = Resource.objects.filter(resource_type=plan.resource_type, deleted=False)
    for condition in plan.conditions:
        rows = rows.filter(condition)
    return rows


def _total(plan: _Plan, rows: QuerySet) -> int | None:
    if plan.total_mode == "none":
        return None
    if plan.total_mode == "estimate" and connection.vendor == "postgresql":
        return _estimated_count(rows)
    return rows.count()


def _estimated_count(rows: QuerySet) -> int:
    """The planner's row estimate: instant at any size, approximate by design."""
    sql, params = rows.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        explained = cursor.fetchone()[0]
    if isinstance(explained, str):
        explained = json.loads(explained)
    return int(explained[0]["Plan"]["Plan Rows"])


def _count_only_result(plan: _Plan, rows: QuerySet, self_params) -> SearchResult:
    total = _total(plan, rows)
    if plan.summary == "count" and total is None:
        total = rows.count()
    return SearchResult(
        entries=[],
        total=total,
        self_params=self_params,
        next_params=None,
        previous_params=None,
        first_params=self_params,
        ignored=plan.ignored,
        summary_count=plan.summary == "count",
    )


# ---------------------------------------------------------------- paging


@dataclass
class _Page:
    rows: list[Resource]
    total: int | None
    next_state: dict | None = None
    previous_state: dict | None = None


def _page(plan: _Plan, rows: QuerySet) -> _Page:
    state = _read_cursor(plan)
    if _uses_snapshot(plan):
        return _snapshot_page(plan, rows, state)
    return _keyset_page(plan, rows, state)


def _uses_snapshot(plan: _Plan) -> bool:
    """Sorts whose first key is mutable need a snapshot; `_id` is unique, so it decides alone."""
    return bool(plan.sort) and plan.sort[0][0] != "_id"


def _query_digest(plan: _Plan) -> str:
    """Ties a cursor to the filters and sort it was made for; other result params may change."""
    basis = [plan.resource_type, sorted(plan.filter_params), plan.result_params.get("_sort")]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:24]


def _link_params(plan: _Plan, self_params, state: dict | None):
    if state is None:
        return None
    token = signing.dumps(
        {**state, "t": plan.resource_type, "q": _query_digest(plan)},
        salt=CURSOR_SALT,
        compress=True,
    )
    return [*self_params, ("_cursor", token)]


def _read_cursor(plan: _Plan) -> dict | None:
    if plan.cursor is None:
        return None
    try:
        state = signing.loads(plan.cursor, salt=CURSOR_SALT)
    except signing.BadSignature:
        raise InvalidRequest("_cursor is not a valid page token", expression=["_cursor"]) from None
    if (
        not isinstance(state, dict)
        or state.get("t") != plan.resource_type
        or state.get("q") != _query_digest(plan)
    ):
        raise InvalidRequest(
            "_cursor belongs to a different search; repeat the search", expression=["_cursor"]
        )
    return state


def _keyset_field(plan: _Plan) -> tuple[str, bool]:
    """The immutable key pages are cut on: insertion order by default, else the logical id."""
    if plan.sort:
        return "logical_id", plan.sort[0][1]
    return "pk", False


def _keyset_page(plan: _Plan, rows: QuerySet, state: dict | None) -> _Page:
    key, descending = _keyset_field(plan)
    backward = bool(state and state["b"])
    if state is not None:
        rows = rows.filter(
            **{f"{key}__{_keyset_lookup(descending, backward, state['i'])}": state["v"]}
        )
    ascending = descending == backward
    fetched = list(rows.order_by(key if ascending else f"-{key}")[: plan.page_size + 1])
    more = len(fetched) > plan.page_size
    page = fetched[: plan.page_size]
    if backward:
        page.reverse()
    result = _Page(page, None)
    result.next_state, result.previous_state = _keyset_links(key, state, page, more, backward)
    if state is None and not more and plan.total_mode != "none":
        result.total = len(page)  # the whole result fitted on the first page
    else:
        result.total = _total(plan, _filtered(plan))
    return result


def _keyset_lookup(descending: bool, backward: bool, inclusive: bool) -> str:
    upward = descending == backward
    return ("gte" if inclusive else "gt") if upward else ("lte" if inclusive else "lt")


def _keyset_links(key: str, state, page: list[Resource], more: bool, backward: bool):
    """Next/previous cursor states around a page; an empty page links back to its boundary."""
    if page:
        after = {"b": False, "v": getattr(page[-1], key), "i": False}
        before = {"b": True, "v": getattr(page[0], key), "i": False}
    elif state is not None:
        complement = {"v": state["v"], "i": not state["i"]}
        after, before = {"b": False, **complement}, {"b": True, **complement}
    else:
        return None, None
    if backward:
        return (after if state else None), (before if more else None)
    return (after if more else None), (before if state else None)


def _order_by(plan: _Plan) -> list:
    keys = [
        F(_SORT_FIELDS[key]).desc() if descending else F(_SORT_FIELDS[key]).asc()
        for key, descending in plan.sort
    ]
    return [*keys, F("pk").asc()]  # ties broken by insertion order, so positions are stable


def _snapshot_page(plan: _Plan, rows: QuerySet, state: dict | None) -> _Page:
    if state is None:
        first = list(rows.order_by(*_order_by(plan))[: plan.page_size + 1])
        if len(first) <= plan.page_size:
            total = None if plan.total_mode == "none" else len(first)
            return _Page(first, total)
        snapshot, offset = _create_snapshot(plan, rows), 0
    else:
        snapshot, offset = _load_snapshot(plan, state), int(state["o"])
    end = offset + plan.page_size
    return _Page(
        _snapshot_rows(plan, snapshot, offset, end),
        None if plan.total_mode == "none" else snapshot.total,
        {"s": str(snapshot.pk), "o": end} if end < snapshot.total else None,
        {"s": str(snapshot.pk), "o": max(0, offset - plan.page_size)} if offset > 0 else None,
    )


def _create_snapshot(plan: _Plan, rows: QuerySet) -> SearchSnapshot:
    """Freeze the ordered match list with one INSERT ... SELECT run inside the database."""
    now = timezone.now()
    with transaction.atomic():
        _purge_expired_snapshots(now)
        snapshot = SearchSnapshot.objects.create(
            expires=now + timedelta(seconds=settings.FHIR_SEARCH_SNAPSHOT_TTL),
            resource_type=plan.resource_type,
            total=0,
        )
        ranked = (
            rows.order_by()
            .annotate(pos=Window(RowNumber(), order_by=_order_by(plan)), row_pk=F("pk"))
            .values_list("pos", "row_pk")
        )
        select_sql, params = ranked.query.sql_with_params()
        snapshot_key = SearchSnapshotEntry._meta.get_field("snapshot").get_db_prep_value(
            snapshot.pk, connection
        )
        with connection.cursor() as cursor:
            cursor.execute(_snapshot_insert_sql(select_sql), [snapshot_key, *params])
            snapshot.total = cursor.rowcount
        snapshot.save(update_fields=["total"])
    return snapshot


def _snapshot_insert_sql(select_sql: str) -> str:
    quote = connection.ops.quote_name
    table = quote(SearchSnapshotEntry._meta.db_table)
    columns = ", ".join(quote(c) for c in ("snapshot_id", "position", "resource_pk"))
    # select_sql comes from the ORM compiler with every value as a bound parameter.
    return (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        f"SELECT %s, ranked.{quote('pos')} - 1, ranked.{quote('row_pk')} FROM ({select_sql}) ranked"
    )


def _purge_expired_snapshots(now: datetime, batch: int = 20):
    """Drop a few expired snapshots per new one, so cleanup never costs a request much."""
    expired = list(
        SearchSnapshot.objects.filter(expires__lt=now).values_list("pk", flat=True)[:batch]
    )
    if expired:
        SearchSnapshotEntry.objects.filter(snapshot_id__in=expired).delete()
        SearchSnapshot.objects.filter(pk__in=expired).delete()


def _load_snapshot(plan: _Plan, state: dict) -> SearchSnapshot:
    snapshot = SearchSnapshot.objects.filter(
        pk=state.get("s"), resource_type=plan.resource_type, expires__gt=timezone.now()
    ).first()
    if snapshot is None:
        raise InvalidRequest(
            "search results expired, repeat the search", code="not-found", expression=["_cursor"]
        )
    return snapshot


def _snapshot_rows(plan: _Plan, snapshot: SearchSnapshot, start: int, end: int) -> list[Resource]:
    """Current versions of the resources at positions [start, end); deleted ones drop out."""
    pks = list(
        SearchSnapshotEntry.objects.filter(snapshot=snapshot, position__gte=start, position__lt=end)
        .order_by("position")
        .values_list("resource_pk", flat=True)
    )
    live = Resource.objects.filter(pk__in=pks, resource_type=plan.resource_type, deleted=False)
    by_pk = {row.pk: row for row in live}
    return [by_pk[pk] for pk in pks if pk in by_pk]


# ---------------------------------------------------------------- includes


def _included_rows(plan: _Plan, matches: list[Resource]) -> list[Resource]:
    """Resources named by `_include`/`_revinclude` for one page, in two queries, capped."""
    if not matches or not (plan.includes or plan.revincludes):
        return []
    wanted = _or([_forward_targets(plan, matches), _reverse_sources(plan, matches)])
    rows = (
        Resource.objects.filter(deleted=False)
        .filter(wanted)
        .exclude(pk__in=[row.pk for row in matches])
        .order_by("resource_type", "pk")
    )
    return list(rows[: settings.FHIR_MAX_INCLUDES])


def _forward_targets(plan: _Plan, matches: list[Resource]) -> Q:
    if not plan.includes:
        return Q(pk__in=[])
    which = _or(
        Q(param__in=inc.params, **({"target_type": inc.target_type} if inc.target_type else {}))
        for inc in plan.includes
    )
    references = ReferenceIndex.objects.filter(
        which, resource_id__in=[row.pk for row in matches], external=False
    ).values_list("target_type", "target_id")
    by_type: dict[str, set[str]] = {}
    for target_type, target_id in references.distinct():
        by_type.setdefault(target_type, set()).add(target_id)
    return _or(Q(resource_type=t, logical_id__in=sorted(ids)) for t, ids in by_type.items())


def _reverse_sources(plan: _Plan, matches: list[Resource]) -> Q:
    if not plan.revincludes:
        return Q(pk__in=[])
    which = _or(Q(resource_type=inc.source_type, param__in=inc.params) for inc in plan.revincludes)
    referrers = ReferenceIndex.objects.filter(
        which,
        target_type=plan.resource_type,
        target_id__in=[row.logical_id for row in matches],
        external=False,
    ).values("resource_id")
    return Q(pk__in=referrers)


# ---------------------------------------------------------------- shaping content


def _shape_match(plan: _Plan, row: Resource) -> dict:
    content = _summarized(plan, json.loads(row.content))
    if plan.elements is not None:
        content = _subset(content, plan.elements | {"resourceType", "id", "meta"})
    return content


def _shape_include(plan: _Plan, row: Resource) -> dict:
    return _summarized(plan, json.loads(row.content))


def _summarized(plan: _Plan, content: dict) -> dict:
    if plan.summary in (None, "count"):
        return content
    resource_type = content.get("resourceType")
    if plan.summary == "data":
        keep = set(content) - {"text"}
    elif plan.summary == "text":
        keep = {"resourceType", "id", "meta", "text"} | _mandatory_elements(resource_type)
    else:
        keep = {"resourceType"} | _summary_elements(resource_type)
    return _subset(content, keep)


def _subset(content: dict, keep: set[str]) -> dict:
    """Only the kept top-level elements (with their `_x` extensions), tagged SUBSETTED."""
    reduced = {k: v for k, v in content.items() if k in keep or k.lstrip("_") in keep}
    meta = dict(reduced.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(
        t.get("code") == "SUBSETTED" and t.get("system") == SUBSETTED["system"] for t in tags
    ):
        tags.append(dict(SUBSETTED))
    meta["tag"] = tags
    reduced["meta"] = meta
    return reduced


@cache
def _model_fields(resource_type: str) -> dict:
    """JSON element name -> field metadata of the R4 model (fhir.resources R4B, same for these)."""
    from fhir.resources.R4B import get_fhir_model_class

    fields = get_fhir_model_class(resource_type).model_fields.items()
    return {
        (info.alias or name): info
        for name, info in fields
        if (info.json_schema_extra or {}).get("element_property")
    }


def _summary_elements(resource_type: str) -> set[str]:
    """Elements FHIR marks isSummary for this type."""
    return {
        name
        for name, info in _model_fields(resource_type).items()
        if info.json_schema_extra.get("summary_element_property")
    }


def _mandatory_elements(resource_type: str) -> set[str]:
    """Top-level elements with minimum cardinality 1."""
    return {
        name
        for name, info in _model_fields(resource_type).items()
        if info.is_required() or info.json_schema_extra.get("element_required")
    }
