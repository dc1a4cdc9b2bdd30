"""PostgreSQL only: statistics and an index type that keep search plans right at scale.

The planner assumes columns are independent, so `resource_type AND param AND system AND code`
multiplies selectivities that in truth imply one another and guesses hundreds of rows where there
are tens of thousands; it then picks nested loops and sorts instead of a merge on resource id.
Extended statistics (functional dependencies and common value combinations) fix the estimates.

The btree on each index table's resource_id gives rows in id order, which tempts the planner to
walk all of it for rare prefix matches ("they will turn up soon"), reading ~900k rows for a page.
Its only real job is equality (re-indexing one resource, cascades), which a hash index does as
well without offering that order. It keeps Django's name, so the migration state stays true.
"""

from django.db import migrations

STATISTICS = {
    "directory_tokenindex": ("tokenindex_param_stats", "resource_type, param, system, code"),
    "directory_stringindex": ("stringindex_param_stats", "resource_type, param"),
    "directory_referenceindex": (
        "referenceindex_param_stats",
        "resource_type, param, target_type",
    ),
}


def _resource_id_index(schema_editor, table: str, method: str) -> str | None:
    """The name of the `method` index on (resource_id) alone, made for the foreign key."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    for name, info in constraints.items():
        if info["index"] and info["columns"] == ["resource_id"] and info["type"] == method:
            return name
    return None


def _rebuild_resource_id_index(schema_editor, table: str, old: str, new: str):
    name = _resource_id_index(schema_editor, table, old)
    if name is None:
        return
    quote = schema_editor.quote_name
    schema_editor.execute(f"DROP INDEX {quote(name)}")
    schema_editor.execute(f"CREATE INDEX {quote(name)} ON {quote(table)} USING {new} (resource_id)")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, (name, columns) in STATISTICS.items():
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {name} (dependencies, mcv) ON {columns} FROM {table}"
        )
        _rebuild_resource_id_index(schema_editor, table, "btree", "hash")
        # Without this the new statistics stay empty until autovacuum gets round to the table.
        schema_editor.execute(f"ANALYZE {table}")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, (name, _columns) in STATISTICS.items():
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {name}")
        _rebuild_resource_id_index(schema_editor, table, "hash", "btree")


class Migration(migrations.Migration):
    # ANALYZE and CREATE INDEX on big tables: no need to hold everything in one transaction.
    atomic = False
    dependencies = [("directory", "0004_search_scale")]
    operations = [migrations.RunPython(forwards, backwards)]
