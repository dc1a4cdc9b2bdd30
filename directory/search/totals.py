"""`Bundle.total` under `_total`: none, the planner's estimate, or an accurate count."""

from __future__ import annotations

import json

from django.db import connection
from django.db.models import QuerySet

from .plan import Plan


def total(plan: Plan, rows: QuerySet) -> int | None:
    """Count the matches the way `_total` asks, or None for `_total=none`."""
    if plan.total_mode == "none":
        return None
    if plan.total_mode == "estimate" and connection.vendor == "postgresql":
        return _estimated_count(rows)
    return rows.count()


def known_total(plan: Plan, count: int) -> int | None:
    """A total already known without a query, reported unless `_total=none`."""
    return None if plan.total_mode == "none" else count


def _estimated_count(rows: QuerySet) -> int:
    """The planner's row estimate: instant at any size, approximate by design."""
    sql, params = rows.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        explained = cursor.fetchone()[0]
    if isinstance(explained, str):
        explained = json.loads(explained)
    return int(explained[0]["Plan"]["Plan Rows"])
