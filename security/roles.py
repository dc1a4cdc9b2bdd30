"""The three staff roles of the web admin, as auth groups with exactly these permissions.

One definition serves the data migration (security 0003) and the post_migrate re-sync, so
permissions of models added later (the directory's admin proxy models) reach the administrators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import Group, Permission
    from django.db.migrations.state import StateApps
    from django.db.models import QuerySet

ADMINISTRATORS = "Directory administrators"
SUPPORT = "Support staff"
AUDITORS = "Auditors"


@dataclass(frozen=True)
class Role:
    """A group: every permission of `all_of_apps`, plus the listed (app_label, codename) pairs."""

    group: str
    all_of_apps: tuple[str, ...] = ()
    # Permissions of the auth app granted to the role; not "all of auth" (groups are structural).
    permissions: tuple[tuple[str, str], ...] = ()


# Administrators manage people too, but only user accounts: group and permission definitions
# belong to this module, so they stay out of the admin's hands.
USER_MANAGEMENT = tuple(
    ("auth", f"{action}_user") for action in ("view", "add", "change", "delete")
)

ROLES = (
    Role(
        ADMINISTRATORS,
        all_of_apps=("directory", "security", "subscriptions"),
        permissions=USER_MANAGEMENT,
    ),
    # Support answers clients: find them, look at keys and audit, and act on keys only.
    Role(
        SUPPORT,
        permissions=tuple(
            ("security", codename)
            for codename in (
                "view_apiclient",
                "view_apikey",
                "view_certificateidentity",
                "view_keyevent",
                "view_requestaudit",
                "issue_apikey",
                "rotate_apikey",
                "retire_apikey",
            )
        ),
    ),
    Role(AUDITORS, permissions=(("security", "view_requestaudit"), ("security", "view_keyevent"))),
)

ROLE_BY_OPTION = {"admin": ADMINISTRATORS, "support": SUPPORT, "auditor": AUDITORS}


def role_permissions(
    role: Role, permission_model: type[Permission], using: str = "default"
) -> QuerySet[Permission]:
    """The Permission rows `role` should hold, as they exist in the database now."""
    from django.db.models import Q

    wanted = Q(content_type__app_label__in=role.all_of_apps)
    for app_label, codename in role.permissions:
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    return permission_model.objects.using(using).filter(wanted)


def sync_groups(
    group_model: type[Group], permission_model: type[Permission], using: str = "default"
) -> None:
    """Create the role groups and set each to exactly its permissions; safe to repeat."""
    for role in ROLES:
        group, _ = group_model.objects.using(using).get_or_create(name=role.group)
        group.permissions.set(role_permissions(role, permission_model, using))


def sync_groups_after_migrate(
    sender: Any, apps: StateApps | None = None, using: str = "default", **kwargs: Any
) -> None:
    """post_migrate handler for the security app: re-syncs the groups after every migrate.

    Connected with this app as sender, it runs after the permissions of every app listed before
    "security" in INSTALLED_APPS (directory, auth) and of security itself have been created;
    an app listed after it whose permissions a role holds (subscriptions) connects it too.
    """
    from django.apps import apps as global_apps

    try:
        group_model = (apps or global_apps).get_model("auth", "Group")
        permission_model = (apps or global_apps).get_model("auth", "Permission")
    except LookupError:
        # auth is not among the available apps (a test limited to some apps): nothing to sync.
        return
    sync_groups(group_model, permission_model, using)
