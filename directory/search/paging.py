"""Pages that hold under writes: keyset on an immutable key, or a snapshot for mutable sorts.

Page links carry a signed cursor tied to the search it was made for.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from django.core import signing
from django.db.models import Q, QuerySet

from ..cursors import (
    MAX_POSITION,
    UUID,
    boolean,
    has_fields,
    integer,
    matching,
    read_signed,
)
from ..errors import InvalidRequest
from ..models import ReferenceIndex, Resource
from ..numbers import MAX_BIGINT
from ..registry import ID_REGEX
from .compiled import order_key, resource_rows
from .filters import filter_conditions, filtered
from .index import semi_joined
from .plan import Plan
from .probes import probed_rows, probes
from .snapshots import first_page_snapshot, load_snapshot, snapshot_rows, sort_order
from .totals import known_total, total

CURSOR_SALT = "fhir-search-cursor"
DIGEST_CHARS = 24

# What a search cursor holds: the search it belongs to, then where its page starts, which
# depends on how the search pages (see _position_fields).
SEARCH_FIELDS = {
    "t": matching(re.compile(r"[A-Za-z]{1,64}")),
    "q": matching(re.compile(rf"[0-9a-f]{{{DIGEST_CHARS}}}")),
}
KEYSET_VALUE = {"pk": integer(0, MAX_BIGINT), "logical_id": matching(re.compile(ID_REGEX))}
SNAPSHOT_FIELDS = {"s": matching(UUID), "o": integer(0, MAX_POSITION)}


@dataclass
class Page:
    rows: list[Resource]
    total: int | None
    next_state: dict | None = None
    previous_state: dict | None = None


def page(plan: Plan) -> Page:
    """The page of the plan's matches its cursor points at (the first page without one)."""
    state = _read_cursor(plan)
    if _uses_snapshot(plan):
        return _snapshot_page(plan, state)
    return _keyset_page(plan, state)


def link_params(
    plan: Plan, self_params: list[tuple[str, str]], state: dict | None
) -> list[tuple[str, str]] | None:
    """The parameters of a page link: the search's own plus a signed cursor, or None."""
    if state is None:
        return None
    token = signing.dumps(
        {**state, "t": plan.resource_type, "q": _query_digest(plan)},
        salt=CURSOR_SALT,
        compress=True,
    )
    return [*self_params, ("_cursor", token)]


def _uses_snapshot(plan: Plan) -> bool:
    """Sorts whose first key is mutable need a snapshot; `_id` is unique, so it decides alone."""
    return bool(plan.sort) and plan.sort[0][0] != "_id"


def _query_digest(plan: Plan) -> str:
    """Ties a cursor to the filters and sort it was made for; other result params may change."""
    basis = [plan.resource_type, sorted(plan.filter_params), plan.result_params.get("_sort")]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:DIGEST_CHARS]


def _read_cursor(plan: Plan) -> dict | None:
    if plan.cursor is None:
        return None
    state = read_signed(plan.cursor, CURSOR_SALT)
    if state is None or not all(check(state.get(key)) for key, check in SEARCH_FIELDS.items()):
        raise _invalid_cursor()
    if state["t"] != plan.resource_type or state["q"] != _query_digest(plan):
        raise InvalidRequest(
            "_cursor belongs to a different search; repeat the search", expression=["_cursor"]
        )
    if not has_fields(state, {**SEARCH_FIELDS, **_position_fields(plan)}):
        raise _invalid_cursor()
    return state


def _invalid_cursor() -> InvalidRequest:
    return InvalidRequest("_cursor is not a valid page token", expression=["_cursor"])


def _position_fields(plan: Plan) -> dict:
    """The fields of a page position, as this plan's pages are cut (keyset or snapshot)."""
    if _uses_snapshot(plan):
        return SNAPSHOT_FIELDS
    key, _ = _keyset_field(plan)
    return {"b": boolean, "v": KEYSET_VALUE[key], "i": boolean}


def first_rows(conditions: list[Q], order: list, limit: int) -> list[Resource]:
    """The first `limit` resources meeting `conditions`, in `order`: ids chosen first, then only
    those rows read; the statement compiled once per shape (compiled.py)."""

    def build() -> QuerySet[Resource]:
        matches = Resource.objects.all()
        for condition in conditions:
            matches = matches.filter(condition)
        # Choosing ids alone lets PostgreSQL answer from indexes (merge-joining index tables with
        # resource_live_idx on id) and fetch the wide rows of one page only, not every candidate.
        page_ids = matches.order_by(*order).values("pk")[:limit]
        return Resource.objects.filter(pk__in=page_ids).order_by(*order)

    ordered = order_key(order)
    if ordered is None:  # ordered by an expression (distance to `near` points)
        return list(build())
    return resource_rows(("first", ordered, limit), conditions, build)


# ---------------------------------------------------------------- keyset


def _keyset_field(plan: Plan) -> tuple[str, bool]:
    """The immutable key pages are cut on: insertion order by default, else the logical id."""
    if plan.sort:
        return "logical_id", plan.sort[0][1]
    return "pk", False


def _keyset_page(plan: Plan, state: dict | None) -> Page:
    key, descending = _keyset_field(plan)
    backward = bool(state and state["b"])
    after = None
    if state is not None:
        after = (_keyset_lookup(descending, backward, state["i"]), state["v"])
    ascending = descending == backward
    fetched = _keyset_rows(plan, key, after, ascending)
    more = len(fetched) > plan.page_size
    rows_on_page = fetched[: plan.page_size]
    if backward:
        rows_on_page.reverse()
    result = Page(rows_on_page, None)
    result.next_state, result.previous_state = _keyset_links(
        key, state, rows_on_page, more, backward
    )
    if state is None and not more:
        result.total = known_total(plan, len(rows_on_page))  # the whole result fitted
    elif plan.total_mode != "bounded":
        result.total = total(plan, filtered(plan))  # counted only when `_total` asks for it
    return result


def _keyset_rows(
    plan: Plan, key: str, after: tuple[str, object] | None, ascending: bool
) -> list[Resource]:
    """One page and the row after it, past the cursor's key value `after` (lookup, value)."""
    limit = plan.page_size + 1
    checks = probes(plan) if key == "pk" else None
    if checks is not None:  # walk the type first (search/probes.py)

        def rest(past: tuple[str, object] | None, wanted: int) -> list[Resource]:
            return _matching_rows(plan, key, past, ascending, wanted)

        return probed_rows(plan, checks, after, ascending, limit, rest)
    return _matching_rows(plan, key, after, ascending, limit)


def _matching_rows(
    plan: Plan, key: str, after: tuple[str, object] | None, ascending: bool, limit: int
) -> list[Resource]:
    """The first `limit` matches past `after`, planned as one search."""
    sign = "" if ascending else "-"
    referrers = _referrer_ids(plan) if key == "pk" else None
    if referrers is None:
        conditions = filter_conditions(plan)
        if after is not None:
            conditions.append(Q(**{f"{key}__{after[0]}": after[1]}))
        return first_rows(conditions, [sign + key], limit)
    if after is not None:
        referrers = referrers.filter(**{f"resource_id__{after[0]}": after[1]})
    page_ids = referrers.order_by(sign + "resource_id").distinct()[:limit]
    conditions = [Q(resource_type=plan.resource_type, deleted=False), Q(pk__in=page_ids)]

    def build() -> QuerySet[Resource]:
        live = Resource.objects.filter(conditions[0])
        return live.filter(conditions[1]).order_by(sign + "pk")

    return resource_rows(("referrers", sign), conditions, build)


def _referrer_ids(plan: Plan) -> QuerySet | None:
    """The referring rows' ids when one reference condition (a chain, say) is the whole filter.

    A chain's referrers come from many targets, so they are not in id order: a page is cut from
    all of them. Their index rows already name live resources of the type (index rows go with
    their resource), so the page is cut from the ids alone and only its own rows are read,
    instead of looking every referrer up in the resource table to sort it there.
    """
    if len(plan.conditions) != 1:
        return None
    rows = semi_joined(plan.conditions[0], ReferenceIndex)
    if rows is None or rows.query.is_sliced:
        return None
    return rows.filter(resource_type=plan.resource_type)


def _keyset_lookup(descending: bool, backward: bool, inclusive: bool) -> str:
    upward = descending == backward
    return ("gte" if inclusive else "gt") if upward else ("lte" if inclusive else "lt")


def _keyset_links(
    key: str, state: dict | None, rows: list[Resource], more: bool, backward: bool
) -> tuple[dict | None, dict | None]:
    """Next/previous cursor states around a page; an empty page links back to its boundary."""
    if rows:
        after = {"b": False, "v": getattr(rows[-1], key), "i": False}
        before = {"b": True, "v": getattr(rows[0], key), "i": False}
    elif state is not None:
        complement = {"v": state["v"], "i": not state["i"]}
        after, before = {"b": False, **complement}, {"b": True, **complement}
    else:
        return None, None
    if backward:
        return (after if state else None), (before if more else None)
    return (after if more else None), (before if state else None)


# ---------------------------------------------------------------- snapshot


def _snapshot_page(plan: Plan, state: dict | None) -> Page:
    """A first page that holds every match needs no snapshot; otherwise page through one."""
    if state is None:
        first = first_rows(filter_conditions(plan), sort_order(plan), plan.page_size + 1)
        if len(first) <= plan.page_size:
            return Page(first, known_total(plan, len(first)))
        snapshot = first_page_snapshot(plan, filtered(plan), _query_digest(plan))
        offset = 0
    else:
        snapshot, offset = load_snapshot(plan, state), int(state["o"])
    end = offset + plan.page_size
    return Page(
        snapshot_rows(plan, snapshot, offset, end),
        known_total(plan, snapshot.total),
        {"s": str(snapshot.pk), "o": end} if end < snapshot.total else None,
        {"s": str(snapshot.pk), "o": max(0, offset - plan.page_size)} if offset > 0 else None,
    )
