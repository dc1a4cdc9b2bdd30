"""Index use of search conditions the B-tree indexes cannot answer (PostgreSQL only)."""

import pytest
from django.db import connection

from directory.search import filtered, parse

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans"),
]

NAMES = 50_000  # enough rows for the planner to weigh a scan against an index, as at scale


@pytest.fixture
def names() -> None:
    """Practitioners with distinct made-up names, analyzed as a real directory is."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO directory_resource"
            " (resource_type, logical_id, version_id, last_updated, deleted, sort_name)"
            " SELECT 'Practitioner', 'p' || g, 1, now(), false, '' FROM generate_series(1, %s) g",
            [NAMES],
        )
        cursor.execute(
            "INSERT INTO directory_stringindex (resource_id, resource_type, param, value, exact)"
            " SELECT id, 'Practitioner', 'name', md5(logical_id), logical_id"
            " FROM directory_resource"
        )
        cursor.execute("ANALYZE directory_stringindex")
        cursor.execute("ANALYZE directory_resource")


def plan_of(resource_type: str, query: list[tuple[str, str]]) -> str:
    """The plan with sequential scans priced out.

    Whether a scan beats the index on a table this small depends on the machine's statistics (CI
    once chose the scan); the question here is whether the SQL *can* use the index at all. A
    condition the index cannot answer (a function around `value`, a cast) still plans without it.
    """
    sql, params = filtered(parse(resource_type, query, strict=True)).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_contains_reads_the_trigram_index(names: None) -> None:
    # `LIKE '%abc%'` over the value B-tree would read every name row of the type.
    plan = plan_of("Practitioner", [("name:contains", "abc")])
    assert "string_value_trgm_idx" in plan, plan


def test_prefix_still_reads_the_value_index(names: None) -> None:
    plan = plan_of("Practitioner", [("name", "abc")])
    assert "string_value_idx" in plan, plan
    # With scans priced out, a walk of the whole index would also name it: the prefix itself
    # must be a range on the index.
    assert "(value ~>=~ 'abc'::text)" in plan, plan
