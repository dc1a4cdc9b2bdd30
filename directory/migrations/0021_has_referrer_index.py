"""`_has` plans: covering indexes on both of its sides, finer token statistics (PostgreSQL).

`_has` now names the referring type (search/chains.py), so the index it reads from referring
resources to their targets carries that type too and stays index-only. It is built before the
old one is dropped, so searches keep an index throughout.

A `_has` whose inner value is common is best driven from the searched type in id order, checking
each candidate's referrers by its logical id: resource_live_idx now carries the logical id so
that walk reads no table rows. Without it PostgreSQL walked the primary key instead (the table is
in id order, so that looked cheaper), through every resource of other types stored before.

Whether PostgreSQL lets a `_has` be driven by its inner matches (few) or by the outer resources
in page order (a common value: a page fills after a few candidates) hangs on how many rows it
expects a token value to match. At the default statistics target the combined (type, parameter,
system, code) statistics keep the 100 commonest values only, and a specialty outside them was
estimated at 1 row where there were 1,263; at 1000 every value of a directory's code systems
with a real share of the rows is listed. ANALYZE then samples 300,000 rows, whatever the size.
"""

from django.db import migrations, models

TOKEN_STATISTICS = "tokenindex_param_stats"  # made by 0005_planner_statistics
TOKEN_STATISTICS_TARGET = 1000
DEFAULT_TARGET = -1


def _set_target(schema_editor, target: int) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER STATISTICS IF EXISTS {TOKEN_STATISTICS} SET STATISTICS {target}")
    schema_editor.execute("ANALYZE directory_tokenindex")


def forwards(apps, schema_editor):
    _set_target(schema_editor, TOKEN_STATISTICS_TARGET)


def backwards(apps, schema_editor):
    _set_target(schema_editor, DEFAULT_TARGET)


class Migration(migrations.Migration):
    # ANALYZE and CREATE INDEX on big tables: no need to hold everything in one transaction.
    atomic = False
    dependencies = [("directory", "0020_export_jobs")]
    operations = [
        migrations.AddIndex(
            model_name="referenceindex",
            index=models.Index(
                fields=["resource", "param", "target_type", "resource_type", "target_id"],
                name="reference_referrer_idx",
            ),
        ),
        migrations.RemoveIndex(model_name="referenceindex", name="reference_source_idx"),
        migrations.RemoveIndex(model_name="resource", name="resource_live_idx"),
        migrations.AddIndex(
            model_name="resource",
            index=models.Index(
                condition=models.Q(("deleted", False)),
                fields=["resource_type", "id", "last_updated"],
                include=["logical_id"],
                name="resource_live_idx",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
