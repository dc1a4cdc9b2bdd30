"""Index what writes made before this change left out: Location boundaries (`contains`) and
NDH `base-ext-newpatients` extensions (HealthcareService `new-patient-and-from-network`).

Only resources whose JSON names those extensions are reindexed, batch by batch. Above the limit
the work is left to `manage.py reindex --type T` (with progress), which the message names.
"""

from django.db import migrations, transaction

# Above this many candidates of a type the migration leaves the work to the command.
REINDEX_IN_MIGRATION_LIMIT = 50_000
BATCH = 500
EXTENSIONS = {
    "Location": "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson",
    "HealthcareService": "http://hl7.org/fhir/us/ndh/StructureDefinition/base-ext-newpatients",
}


def reindex_candidates(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return  # replicas receive the rows from the primary
    # The service extracts with the current code: the point is to add the rows it now writes.
    from directory.models import Resource
    from directory.reindex import reindex_rows

    for resource_type, url in EXTENSIONS.items():
        rows = Resource.objects.filter(
            resource_type=resource_type, deleted=False, content__contains=url
        )
        count = rows.count()
        if count > REINDEX_IN_MIGRATION_LIMIT:
            print(f"\n  {count} {resource_type}: run `manage.py reindex --type {resource_type}`")
            continue
        last = 0
        while True:
            with transaction.atomic():
                batch = list(rows.filter(pk__gt=last).order_by("pk").select_for_update()[:BATCH])
                if not batch:
                    break
                reindex_rows(batch)
            last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0022_boundary_index"),
    ]

    operations = [
        migrations.RunPython(reindex_candidates, migrations.RunPython.noop),
    ]
