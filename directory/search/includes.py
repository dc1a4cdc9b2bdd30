"""`_include` and `_revinclude`: validating them, and fetching the resources they add to a page."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from ..errors import InvalidRequest
from ..models import ReferenceIndex, Resource
from ..registry import RESOURCES, SearchParam
from .plan import Include, Plan
from .values import any_of, nothing


def parse_include(plan: Plan, name: str, value: str):
    """Record one `_include` or `_revinclude` value (Type:param or Type:param:Target)."""
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


def _forward_include(plan, value, source, param_name, target) -> Include:
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
    return Include(source, tuple(p.name for p in params), target)


def _reverse_include(plan, value, source, param_name, target) -> Include:
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
    return Include(source, tuple(p.name for p in params), plan.resource_type)


def included_rows(plan: Plan, matches: list[Resource]) -> list[Resource]:
    """Resources named by `_include`/`_revinclude` for one page, in two queries, capped."""
    if not matches or not (plan.includes or plan.revincludes):
        return []
    wanted = any_of([_forward_targets(plan, matches), _reverse_sources(plan, matches)])
    rows = (
        Resource.objects.filter(deleted=False)
        .filter(wanted)
        .exclude(pk__in=[row.pk for row in matches])
        .order_by("resource_type", "pk")
    )
    return list(rows[: settings.FHIR_MAX_INCLUDES])


def _forward_targets(plan: Plan, matches: list[Resource]) -> Q:
    if not plan.includes:
        return nothing()
    which = any_of(
        Q(param__in=inc.params, **({"target_type": inc.target_type} if inc.target_type else {}))
        for inc in plan.includes
    )
    references = ReferenceIndex.objects.filter(
        which, resource_id__in=[row.pk for row in matches], external=False
    ).values_list("target_type", "target_id")
    by_type: dict[str, set[str]] = {}
    for target_type, target_id in references.distinct():
        by_type.setdefault(target_type, set()).add(target_id)
    return any_of(Q(resource_type=t, logical_id__in=sorted(ids)) for t, ids in by_type.items())


def _reverse_sources(plan: Plan, matches: list[Resource]) -> Q:
    if not plan.revincludes:
        return nothing()
    which = any_of(
        Q(resource_type=inc.source_type, param__in=inc.params) for inc in plan.revincludes
    )
    referrers = ReferenceIndex.objects.filter(
        which,
        target_type=plan.resource_type,
        target_id__in=[row.logical_id for row in matches],
        external=False,
    ).values("resource_id")
    return Q(pk__in=referrers)
