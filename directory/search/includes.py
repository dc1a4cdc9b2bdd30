"""`_include` and `_revinclude`: validating them; iterate.py fetches the resources they add."""

from __future__ import annotations

from ..errors import InvalidRequest
from ..models import Resource
from ..registry import RESOURCES, SearchParam
from . import iterate
from .plan import Include, Plan


def parse_include(plan: Plan, name: str, value: str, iterated: bool = False) -> None:
    """Record one `_include` or `_revinclude` value (Type:param[:Target], Type:* or *)."""
    if value == "*" and name == "_include":
        # Every reference of the matches; iterated, of every resource already in the result.
        source = iterate.ANY_SOURCE if iterated else plan.resource_type
        plan.includes.append(Include(source, (iterate.EVERY_PARAM,), None, iterated))
        return
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[0] not in RESOURCES:
        raise InvalidRequest(
            f"{name} value '{value}' must be Type:param, Type:param:Target, Type:* or *",
            expression=[name],
        )
    source, param_name = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if name == "_include":
        include = _forward_include(plan, value, source, param_name, target, iterated)
        plan.includes.append(include)
    else:
        include = _reverse_include(plan, value, source, param_name, target, iterated)
        plan.revincludes.append(include)


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


def _can_target(param: SearchParam, resource_type: str) -> bool:
    """No declared target means any type."""
    return not param.targets or resource_type in param.targets


def _forward_include(
    plan: Plan, value: str, source: str, param_name: str, target: str | None, iterated: bool
) -> Include:
    # Iterated, the source may be any type an earlier round put in the result.
    if source != plan.resource_type and not iterated:
        raise InvalidRequest(
            f"_include '{value}' must start with {plan.resource_type} (or use _include:iterate)",
            expression=["_include"],
        )
    params = _reference_params(source, param_name, value, "_include")
    if target is not None and not any(_can_target(p, target) for p in params):
        raise InvalidRequest(
            f"_include '{value}': {target} is not a target of {param_name}", expression=["_include"]
        )
    return Include(source, tuple(p.name for p in params), target, iterated)


def _reverse_include(
    plan: Plan, value: str, source: str, param_name: str, target: str | None, iterated: bool
) -> Include:
    name = "_revinclude"
    if target is not None and target not in RESOURCES:
        raise InvalidRequest(f"{name} '{value}': unknown type '{target}'", expression=[name])
    # Not iterated, the referenced resources are the matches, so the target is the searched type.
    wanted = target or (None if iterated else plan.resource_type)
    if not iterated and wanted != plan.resource_type:
        raise InvalidRequest(
            f"{name} '{value}' must target {plan.resource_type}", expression=[name]
        )
    params = [
        p
        for p in _reference_params(source, param_name, value, name)
        if wanted is None or _can_target(p, wanted)
    ]
    if not params:
        raise InvalidRequest(f"{name} '{value}' cannot refer to {wanted}", expression=[name])
    return Include(source, tuple(p.name for p in params), wanted, iterated)


def included_rows(plan: Plan, matches: list[Resource]) -> list[Resource]:
    """Resources named by `_include`/`_revinclude` for one page, `:iterate` followed, capped."""
    return iterate.included_rows(plan, matches)
