"""`Bundle.total` under `_total`: none, the planner's estimate, an accurate or a bounded count.

Without `_total` a page's total is given only when known without a count (paging.py): counting
even up to a limit was half the time of a large search, and `Bundle.total` is optional. `_count=0`
counts up to a limit, above which the total is left out rather than guessed.
`_total=accurate` always counts; `_total=estimate` asks the planner.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from .plan import Plan

DEFAULT_EXACT_LIMIT = 10_000


def exact_limit() -> int:
    """How many matches the default total counts before giving up (setting, else 10,000)."""
    return getattr(settings, "FHIR_TOTAL_EXACT_LIMIT", DEFAULT_EXACT_LIMIT)


def total(plan: Plan, rows: QuerySet) -> int | None:
    """Count the matches the way `_total` asks; None when not asked or above the limit."""
    if plan.total_mode == "none":
        return None
    if plan.total_mode == "estimate" and connection.vendor == "postgresql":
        return _estimated_count(rows)
    if plan.total_mode == "bounded":
        return bounded_count(rows, exact_limit())
    return rows.count()


def known_total(plan: Plan, count: int) -> int | None:
    """A total already known without a query, reported unless `_total=none`."""
    return None if plan.total_mode == "none" else count


def bounded_count(rows: QuerySet, limit: int) -> int | None:
    """The exact count when it is at most `limit`, else None; reads at most limit + 1 ids."""
    # Django counts a sliced queryset as SELECT count(*) FROM (... LIMIT n), so the database
    # stops after limit + 1 matches instead of visiting all of them.
    counted = rows.order_by().values("pk")[: limit + 1].count()
    return counted if counted <= limit else None


def _estimated_count(rows: QuerySet) -> int:
    """The planner's row estimate: instant at any size, approximate by design."""
    sql, params = rows.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        explained = cursor.fetchone()[0]
    if isinstance(explained, str):
        explained = json.loads(explained)
    return int(explained[0]["Plan"]["Plan Rows"])
