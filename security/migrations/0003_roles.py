"""The staff roles (auth groups) of the web admin; definitions live in security/roles.py."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from security.roles import ROLES, sync_groups

# Apps whose permissions the roles draw on; other apps' permissions are created by post_migrate.
PERMISSION_APPS = ("auth", "directory", "security")


def create_missing_permissions(apps, using):
    """Permissions are normally created after migrate (post_migrate); the groups need them now."""
    for label in PERMISSION_APPS:
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            continue
        # Historical app configs have no models module; create_permissions skips those.
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None


def create_roles(apps, schema_editor):
    using = schema_editor.connection.alias
    create_missing_permissions(apps, using)
    sync_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), using)


def remove_roles(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    names = [role.group for role in ROLES]
    group_model.objects.using(schema_editor.connection.alias).filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0002_key_action_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
