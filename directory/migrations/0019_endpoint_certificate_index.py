"""File the certificates of stored Endpoints in the search index (issue 13).

Security finds Endpoint certificates through index rows (directory/certificate_index.py) that
only writes made since this change carry; the Endpoints already stored are reindexed here. A
very large directory is left to `manage.py reindex --type Endpoint`, which the message names.
"""

from django.db import migrations

# Above this many live Endpoints the migration leaves the work to the command.
REINDEX_IN_MIGRATION_LIMIT = 50_000


def index_endpoint_certificates(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return  # replicas receive the rows from the primary
    Resource = apps.get_model("directory", "Resource")
    endpoints = Resource.objects.using(schema_editor.connection.alias).filter(
        resource_type="Endpoint", deleted=False
    )
    live = endpoints.count()
    if live == 0:
        return
    if live > REINDEX_IN_MIGRATION_LIMIT:
        print(f"\n  {live} Endpoints: run `manage.py reindex --type Endpoint` to index their certificates")
        return
    # The service extracts with the current code: the point is to add the rows it now writes.
    from directory.reindex import reindex

    reindex("Endpoint")


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0018_import_job"),
    ]

    operations = [
        migrations.RunPython(index_endpoint_certificates, migrations.RunPython.noop),
    ]
