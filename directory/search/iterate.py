"""Fetching the resources `_include` and `_revinclude` add to a page, `:iterate` included.

The first round applies every include to the page's matches; each further round applies only the
`:iterate` ones to what the previous round added, until a round adds nothing new, the depth bound
is reached or `FHIR_MAX_INCLUDES` resources have been added. Each round is one query.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from ..models import ReferenceIndex, Resource
from .plan import Include, Plan
from .values import any_of, nothing

# Rounds of `:iterate` after the first; a directory's reference graph (role → location →
# organization → parent → endpoint) is shallow, so deeper is a loop, not an answer.
MAX_ITERATE_DEPTH = 4
# `Include.params` value meaning every reference parameter of the source type.
EVERY_PARAM = "*"
# `Include.source_type` value meaning any type present in the result (`_include:iterate=*`).
ANY_SOURCE = "*"


def included_rows(plan: Plan, matches: list[Resource]) -> list[Resource]:
    """Resources named by the plan's includes for one page of matches, capped."""
    if not matches or not (plan.includes or plan.revincludes):
        return []
    seen = {row.pk for row in matches}
    found: list[Resource] = []
    frontier = matches
    for depth in range(1 + MAX_ITERATE_DEPTH):
        includes = [i for i in plan.includes if depth == 0 or i.iterate]
        revincludes = [i for i in plan.revincludes if depth == 0 or i.iterate]
        room = settings.FHIR_MAX_INCLUDES - len(found)
        if not frontier or not (includes or revincludes) or room <= 0:
            break
        wanted = _forward_targets(includes, frontier) | _reverse_sources(revincludes, frontier)
        rows = (
            Resource.objects.filter(deleted=False)
            .filter(wanted)
            .exclude(pk__in=sorted(seen))
            .order_by("resource_type", "pk")
        )
        frontier = list(rows[:room])
        found += frontier
        seen |= {row.pk for row in frontier}
    return found


def _which(include: Include, source_field: str, target_field: str) -> Q:
    """The ReferenceIndex rows one include follows, by source type, parameter and target type."""
    which = Q(external=False)  # never an empty Q: OR-ed with nothing() it would vanish
    if include.source_type != ANY_SOURCE:
        which &= Q(**{source_field: include.source_type})
    if EVERY_PARAM not in include.params:
        which &= Q(param__in=include.params)
    if include.target_type:
        which &= Q(**{target_field: include.target_type})
    return which


def _forward_targets(includes: list[Include], frontier: list[Resource]) -> Q:
    if not includes:
        return nothing()
    which = any_of(_which(inc, "resource_type", "target_type") for inc in includes)
    references = ReferenceIndex.objects.filter(
        which, resource_id__in=[row.pk for row in frontier], external=False
    ).values_list("target_type", "target_id")
    by_type: dict[str, set[str]] = {}
    for target_type, target_id in references.distinct():
        by_type.setdefault(target_type, set()).add(target_id)
    return any_of(Q(resource_type=t, logical_id__in=sorted(ids)) for t, ids in by_type.items())


def _reverse_sources(revincludes: list[Include], frontier: list[Resource]) -> Q:
    if not revincludes:
        return nothing()
    which = any_of(_which(inc, "resource_type", "target_type") for inc in revincludes)
    by_type: dict[str, list[str]] = {}
    for row in frontier:
        by_type.setdefault(row.resource_type, []).append(row.logical_id)
    pointing = any_of(Q(target_type=t, target_id__in=ids) for t, ids in by_type.items())
    referrers = ReferenceIndex.objects.filter(which, pointing, external=False)
    return Q(pk__in=referrers.values("resource_id"))
