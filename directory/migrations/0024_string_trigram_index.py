"""`:contains` on string parameters from a trigram index (PostgreSQL).

`name:contains=mit` is `value LIKE '%mit%'`, which no B-tree can answer: on the
1-million-practitioner directory it read every name row of the type (304 ms at p95). A GIN index
of the folded values' trigrams (the `pg_trgm` extension shipped with PostgreSQL, trusted since
PostgreSQL 13, so a database owner may install it) answers any pattern of three characters or
more from the index; shorter ones still scan, as they must.

SQLite keeps its scan: it is the first-run database, not the national one.
"""

from django.db import migrations

INDEX = "string_value_trgm_idx"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # Not CONCURRENTLY: a migration runs before the service takes traffic on a new version.
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON directory_stringindex "
        "USING gin (value gin_trgm_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The extension stays: other objects in the database may use it.
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # a long index build on a big table need not hold one transaction
    dependencies = [("directory", "0023_index_boundaries_and_composites")]
    operations = [migrations.RunPython(forwards, backwards)]
