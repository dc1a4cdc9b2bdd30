"""Planner statistics after a bulk load (directory/statistics.py).

With autovacuum off or behind, the statistics of the tables a load filled stay those of the
empty tables, and PostgreSQL planned an NPI search as a walk over every NPI row.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from directory import statistics
from directory.models import TokenIndex

pytestmark = pytest.mark.django_db(transaction=True)


def analyzed(table: str) -> bool:
    """Whether the planner holds statistics gathered from `table`'s rows."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Row count as ANALYZE last saw it: -1 for a table never analyzed since TRUNCATE.
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
            return cursor.fetchone()[0] > 0
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = %s", [table])
        return bool(cursor.fetchone()[0])


def forget_statistics() -> None:
    """Start from a table whose statistics predate its rows, as before a load."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {TokenIndex._meta.db_table}")
            return
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone()[0]:
            cursor.execute("DELETE FROM sqlite_stat1")


def test_generating_a_directory_leaves_statistics_for_the_planner(monkeypatch):
    forget_statistics()
    table = TokenIndex._meta.db_table
    assert not analyzed(table)
    monkeypatch.setattr(statistics, "MINIMUM_LOADED", 100)
    call_command("generatedirectory", practitioners=60, seed=5, stdout=None)
    assert analyzed(table)


def test_a_small_load_leaves_the_statistics_to_autovacuum():
    forget_statistics()
    call_command("generatedirectory", practitioners=60, seed=5, stdout=None)  # ~150 resources
    assert not analyzed(TokenIndex._meta.db_table)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")
def test_the_database_check_names_autovacuum_when_it_is_off():
    from django.core.checks import run_checks

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        setting = cursor.fetchone()[0]
    warned = [m.id for m in run_checks(tags=["database"], databases=["default"])]
    assert ("directory.W001" in warned) == (setting != "on")
