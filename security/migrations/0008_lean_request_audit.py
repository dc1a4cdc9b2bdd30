"""RequestAudit: no foreign-key constraint on client, no single-column indexes on client and time.

Every request inserts a row; the composite indexes that lead with `client` and `time` already
serve those lookups, and the constraint's trigger locked the client's row on every insert.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0007_verbose_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="requestaudit",
            name="client",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="security.apiclient",
            ),
        ),
        migrations.AlterField(
            model_name="requestaudit",
            name="time",
            field=models.DateTimeField(),
        ),
    ]
