"""Drop the single-column indexes of two foreign keys that a composite index already leads with.

`ResourceVersion.resource` is the first column of `version_uniq` and `ReferenceIndex.resource`
of `reference_referrer_idx`: every look-up by resource alone is served by those, and the
separate B-trees only cost each write one insertion more. The foreign keys themselves stay.

Only the indexes are dropped (Django's own AlterField would also drop and re-add each foreign
key, which re-checks every row under a lock: long on a national directory).
"""

import django.db.models.deletion
from django.db import migrations, models

# Django's names for the foreign keys' own indexes, the same on PostgreSQL and SQLite.
DROPPED = {
    "directory_resourceversion_resource_id_79856774": "directory_resourceversion",
    "directory_referenceindex_resource_id_5a571419": "directory_referenceindex",
}


def _sql(create: bool) -> list[str]:
    if create:
        return [
            f'CREATE INDEX "{name}" ON "{table}" ("resource_id")' for name, table in DROPPED.items()
        ]
    return [f'DROP INDEX IF EXISTS "{name}"' for name in DROPPED]


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0024_string_trigram_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(_sql(create=False), _sql(create=True))],
            state_operations=[
                migrations.AlterField(
                    model_name="referenceindex",
                    name="resource",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="directory.resource",
                    ),
                ),
                migrations.AlterField(
                    model_name="resourceversion",
                    name="resource",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="directory.resource",
                    ),
                ),
            ],
        ),
    ]
