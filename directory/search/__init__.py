"""FHIR R4 search: parameters evaluated on the index tables, paging that holds under writes.

Every filter is a semi-join from Resource into one index table, so a search is a handful of index
lookups whatever the size of the directory. Unsorted searches and `_sort=_id` page by keyset on an
immutable key; searches sorted on mutable keys page through a snapshot taken on the first page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from ..customparams import check_ready
from ..models import Resource
from ..stored import StoredResource
from .filters import filtered
from .includes import included_rows
from .near import annotate_entries as annotate_near_distances
from .paging import CURSOR_SALT, link_params, page
from .params import parse, self_params
from .plan import Plan
from .shaping import SUBSETTED, shape_include, shape_match
from .totals import total

__all__ = [
    "CURSOR_SALT",
    "SUBSETTED",
    "SearchEntry",
    "SearchRequest",
    "SearchResult",
    "matching_rows",
    "search",
]


@dataclass
class SearchRequest:
    resource_type: str
    params: list[tuple[str, str]]
    strict: bool = False
    # Who is asking, as an opaque key (the API layer's client identity); scopes snapshot reuse,
    # the per-client snapshot cap and which cursors it may follow. Empty for internal callers.
    owner: str = ""


@dataclass
class SearchEntry:
    row: Resource
    mode: str
    # The stored text when neither `_summary` nor `_elements` reduces it (spliced, not parsed).
    content: dict | StoredResource
    # Extensions of `Bundle.entry.search`, e.g. location-distance (search/near.py).
    extensions: list[dict] = field(default_factory=list)


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
    check_ready(request.resource_type, request.params)  # custom parameters not yet reindexed
    plan = parse(request.resource_type, request.params, strict=request.strict)
    plan.owner = request.owner
    applied = self_params(plan)
    if plan.summary == "count" or plan.page_size == 0:
        return _count_only_result(plan, filtered(plan), applied)
    current = page(plan)  # builds the ORM query only for shapes not compiled before
    entries = [SearchEntry(row, "match", shape_match(plan, row)) for row in current.rows]
    entries += [
        SearchEntry(row, "include", shape_include(plan, row))
        for row in included_rows(plan, current.rows)
    ]
    annotate_near_distances(plan, entries)
    return SearchResult(
        entries=entries,
        total=current.total,
        self_params=applied,
        next_params=link_params(plan, applied, current.next_state),
        previous_params=link_params(plan, applied, current.previous_state),
        first_params=applied,
        ignored=plan.ignored,
        summary_count=False,
    )


def matching_rows(resource_type: str, pairs: list[tuple[str, str]], limit: int) -> list[Resource]:
    """Live resources matching filter criteria (conditional create); strict, no result params."""
    plan = parse(resource_type, pairs, strict=True, filters_only=True)
    return list(filtered(plan).order_by("pk")[:limit])


def _count_only_result(
    plan: Plan, matches: QuerySet, applied: list[tuple[str, str]]
) -> SearchResult:
    """`_summary=count` or `_count=0`: a total (always counted for count) and no entries."""
    counted: int | None
    if plan.summary == "count" and plan.total_mode in ("bounded", "none"):
        counted = matches.count()  # a count is all `_summary=count` is for, however large
    else:
        counted = total(plan, matches)
    return SearchResult(
        entries=[],
        total=counted,
        self_params=applied,
        next_params=None,
        previous_params=None,
        first_params=applied,
        ignored=plan.ignored,
        summary_count=plan.summary == "count",
    )
