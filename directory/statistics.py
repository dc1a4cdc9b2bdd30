"""Planner statistics refreshed after a bulk load, on PostgreSQL and SQLite alike.

A search's plan is only as good as the row counts and value frequencies the planner holds. A
bulk load changes them wholesale, and nothing guarantees autovacuum catches up soon (it can be
off: it is on the machines this project is measured on). Until it does, the planner trusts the
statistics of the nearly empty tables: on a freshly generated directory of 20,000 practitioners
`Practitioner?identifier=<NPI>` walked every NPI row (81 ms) instead of probing one (0.1 ms).
`pg_restore` and SQLite document the same remedy: ANALYZE after loading.
"""

from __future__ import annotations

from django.db import connections
from django.db.models import Model

from .models import Resource, ResourceVersion
from .search.index import TABLES

# Below this many resources a load cannot move the statistics enough to change a plan.
MINIMUM_LOADED = 1_000


def loaded_tables() -> tuple[type[Model], ...]:
    """Every table a bulk load fills: resources, their versions and each index table."""
    return (Resource, ResourceVersion, *(table.model for table in TABLES))


def refresh_after_load(resources_stored: int, using: str = "default") -> bool:
    """ANALYZE the loaded tables when a load stored enough to matter; whether it ran."""
    if resources_stored < MINIMUM_LOADED:
        return False
    connection = connections[using]
    with connection.cursor() as cursor:
        for model in loaded_tables():
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return True
