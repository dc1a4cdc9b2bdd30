"""Chained parameters (`practitioner.name=`) and reverse chains (`_has:Type:ref:param=`).

Each hop is a semi-join through ReferenceIndex, nested inside the next, so PostgreSQL evaluates
the whole chain from the index tables: no id list is ever fetched into Python.

A reference parameter that can point at several types (or at any type) and carries no `:Type`
modifier chains into every target type that has the next parameter, and the answer is their
union. FHIR lets a server refuse such a chain as ambiguous; a union is what a client asking
`network.name=Acme` means, and `reach` names every one of those types so authorization checks them.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

from ..errors import InvalidRequest
from ..models import ReferenceIndex, Resource
from ..registry import RESOURCE_TYPES, RESOURCES, SearchParam
from .filters import filter_condition
from .index import semi_joined
from .plan import Plan
from .reach import HAS_PREFIX, MAX_HAS_DEPTH, link_targets
from .values import any_of

# An untyped link into several types, repeated along a chain, multiplies the subqueries: past this
# many in one parameter the client must pick types with `:Type` modifiers.
MAX_SUBQUERIES = 32
# SQLite's parser overflows its stack on deeper or wider nesting (a first-run database only).
SQLITE_MAX_HOPS = 3
SQLITE_MAX_SUBQUERIES = 12


def is_chained(raw_name: str) -> bool:
    """True for a chained or `_has` parameter name, which `condition` evaluates."""
    return raw_name.startswith(HAS_PREFIX) or "." in raw_name


def condition(plan: Plan, raw_name: str, value: str) -> Q | None:
    """The condition a (possibly chained or `_has`) parameter adds to `plan`, None if skipped."""
    budget = SQLITE_MAX_SUBQUERIES if connection.vendor == "sqlite" else MAX_SUBQUERIES
    return _condition(plan, raw_name, value, 0, [budget])


def max_hops() -> int:
    """Chain and `_has` hops one parameter may take on this database."""
    return SQLITE_MAX_HOPS if connection.vendor == "sqlite" else MAX_HAS_DEPTH - 1


def _condition(plan: Plan, raw_name: str, value: str, depth: int, budget: list[int]) -> Q | None:
    if depth > max_hops():
        raise InvalidRequest(
            f"'{raw_name[:200]}' is too deep: at most {max_hops()} chain or _has levels"
            + (" on SQLite" if connection.vendor == "sqlite" else ""),
            expression=[raw_name[:200]],
        )
    if raw_name.startswith(HAS_PREFIX):
        return _has_condition(plan, raw_name, value, depth, budget)
    if "." in raw_name:
        return _chain_condition(plan, raw_name, value, depth, budget)
    name, _, modifier = raw_name.partition(":")
    return filter_condition(plan, raw_name, name, modifier, value)


def _sub_plan(plan: Plan, resource_type: str) -> Plan:
    return Plan(resource_type, RESOURCES[resource_type], plan.strict, plan.filters_only)


def _inner(
    plan: Plan, resource_type: str, raw_name: str, value: str, depth: int, budget: list[int]
) -> Q | None:
    """The condition `raw_name` sets on `resource_type`; notes of skipped parts reach `plan`."""
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidRequest(
            f"'{raw_name[:200]}' reaches too many types; name them with :Type modifiers",
            expression=[raw_name[:200]],
        )
    sub = _sub_plan(plan, resource_type)
    found = _condition(sub, raw_name, value, depth + 1, budget)
    plan.ignored += sub.ignored
    return found


def _live(resource_type: str, inner: Q) -> QuerySet[Resource]:
    return Resource.objects.filter(resource_type=resource_type, deleted=False).filter(inner)


# ---------------------------------------------------------------- forward chains


def _chain_condition(
    plan: Plan, raw_name: str, value: str, depth: int, budget: list[int]
) -> Q | None:
    link, _, rest = raw_name.partition(".")
    param_name, _, explicit = link.partition(":")
    param = _chain_param(plan, raw_name, param_name, explicit)
    if param is None:
        return None
    if explicit and param.targets and explicit not in param.targets:
        raise InvalidRequest(
            f"'{raw_name}': {explicit} is not a target of '{param_name}'", expression=[raw_name]
        )
    targets = link_targets(param, explicit, rest.split(".")[0])
    if not targets:
        plan.skip(
            f"Chained parameter '{raw_name}' names no parameter on the targets of "
            f"'{param_name}' and was ignored",
            f"Chained parameter '{raw_name}': no target of '{param_name}' "
            f"({', '.join(param.targets) or 'any type'}) has a parameter '{rest.split('.')[0]}'",
            expression=raw_name,
        )
        return None
    hops = []
    for target in targets:
        inner = _inner(plan, target, rest, value, depth, budget)
        if inner is None:
            return None
        hops.append(_forward_hop(plan.resource_type, param.name, target, inner))
    return hops[0] if len(hops) == 1 else any_of(hops)  # one hop stays a plain semi-join


def _chain_param(plan: Plan, raw_name: str, param_name: str, explicit: str) -> SearchParam | None:
    """The reference parameter of one chain link; anything else cannot be chained."""
    if explicit and explicit not in RESOURCE_TYPES:
        raise InvalidRequest(
            f"'{raw_name}': a chain link takes only a resource type modifier, not ':{explicit}'",
            code="not-supported",
            expression=[raw_name],
        )
    param = plan.rdef.params.get(param_name)
    if param is None:
        plan.skip(
            f"Unknown search parameter '{param_name}' in '{raw_name}' was ignored",
            f"Unknown search parameter '{param_name}' for {plan.resource_type} in '{raw_name}'",
            expression=raw_name,
        )
        return None
    if param.type != "reference":
        raise InvalidRequest(
            f"'{raw_name}': '{param_name}' is a {param.type} parameter and cannot be chained",
            expression=[raw_name],
        )
    return param


def _forward_hop(source: str, param: str, target: str, inner: Q) -> Q:
    """Resources of `source` whose `param` points at a live `target` meeting `inner`."""
    references = ReferenceIndex.objects.filter(
        resource_type=source,
        param=param,
        target_type=target,
        target_id__in=_live(target, inner).values("logical_id"),
    )
    return Q(pk__in=references.values("resource_id"))


# ---------------------------------------------------------------- reverse chains (_has)


def _has_condition(
    plan: Plan, raw_name: str, value: str, depth: int, budget: list[int]
) -> Q | None:
    parts = raw_name[len(HAS_PREFIX) :].split(":", 2)
    if len(parts) < 3 or not all(parts):
        raise InvalidRequest(
            f"'{raw_name[:200]}' must be _has:Type:reference:parameter",
            expression=[raw_name[:200]],
        )
    source, ref_name, rest = parts
    param = _has_param(plan, raw_name, source, ref_name)
    inner = _inner(plan, source, rest, value, depth, budget)
    if inner is None:
        return None
    # The referrers' type is implied by their ids but still named: with it PostgreSQL can
    # also go the other way, from each candidate through reference_param_idx to its referrers,
    # which is what a common inner value on a first page needs (a few candidates, not every
    # referrer); the inner side drives when its matches are few.
    references = ReferenceIndex.objects.filter(
        resource_type=source,
        param=param.name,
        target_type=plan.resource_type,
        resource_id__in=_referrer_ids(source, inner),
    )
    return Q(logical_id__in=references.values("target_id"))


def _referrer_ids(source: str, inner: Q) -> QuerySet:
    """Row ids of the live `source` resources meeting `inner`.

    A plain semi-join into an index table already names live resources of that type only, so
    its ids are used as they are rather than checked against every resource of the type; a
    negated condition needs the resources themselves.
    """
    rows = semi_joined(inner)
    return rows if rows is not None else _live(source, inner).values("pk")


def _has_param(plan: Plan, raw_name: str, source: str, ref_name: str) -> SearchParam:
    """The reference parameter of `source` that `_has` follows back to the searched type."""
    rdef = RESOURCES.get(source)
    if rdef is None:
        raise InvalidRequest(
            f"'{raw_name[:200]}': unknown resource type '{source[:40]}'",
            expression=[raw_name[:200]],
        )
    param = rdef.params.get(ref_name)
    if param is None or param.type != "reference":
        raise InvalidRequest(
            f"'{raw_name[:200]}': {source} has no reference parameter '{ref_name[:64]}'",
            expression=[raw_name[:200]],
        )
    if param.targets and plan.resource_type not in param.targets:
        raise InvalidRequest(
            f"'{raw_name[:200]}': {source}:{ref_name} cannot refer to {plan.resource_type}",
            expression=[raw_name[:200]],
        )
    return param
