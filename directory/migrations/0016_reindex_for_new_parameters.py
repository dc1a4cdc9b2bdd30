"""Rebuild the search index under the SearchParameter definitions (issue 9).

Resources stored before have no date, uri, `:text`, `:of-type` or extension-parameter rows. A
small directory is reindexed here; a large one would hold the upgrade for minutes, so it is left
to `manage.py reindex` (with progress), which the message names.
"""

from django.db import migrations

# Above this many live resources the migration leaves the work to the command.
REINDEX_IN_MIGRATION_LIMIT = 50_000


def reindex_small_directories(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return  # replicas receive the rows from the primary
    Resource = apps.get_model("directory", "Resource")
    live = Resource.objects.using(schema_editor.connection.alias).filter(deleted=False).count()
    if live == 0:
        return
    if live > REINDEX_IN_MIGRATION_LIMIT:
        print(f"\n  {live} resources: run `manage.py reindex` to index the new search parameters")
        return
    # The service reads the current definitions: the point is to index under them.
    from directory.reindex import reindex

    reindex()


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0015_admin_proxy_search_parameter"),
    ]

    operations = [
        migrations.RunPython(reindex_small_directories, migrations.RunPython.noop),
    ]
