"""Staff roles: the groups hold exactly their permissions, and the admin enforces them."""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.models.signals import post_migrate

from security import roles
from security.models import ApiKey, KeyEvent, RequestAudit, TrustAnchor, TrustCommunity

from .staff import fast_passwords, make_staff  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

SUPPORT_PERMISSIONS = {
    "security.view_apiclient",
    "security.view_apikey",
    "security.view_certificateidentity",
    "security.view_keyevent",
    "security.view_requestaudit",
    "security.issue_apikey",
    "security.rotate_apikey",
    "security.retire_apikey",
}
AUDITOR_PERMISSIONS = {"security.view_requestaudit", "security.view_keyevent"}


def group_permissions(name: str) -> set[str]:
    permissions = Group.objects.get(name=name).permissions.select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


def all_permissions_of(*app_labels: str) -> set[str]:
    permissions = Permission.objects.filter(content_type__app_label__in=app_labels)
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions.select_related()}


def announce_migrate() -> None:
    """Send post_migrate for the security app, as the end of `migrate` does."""
    post_migrate.send(
        sender=global_apps.get_app_config("security"),
        app_config=global_apps.get_app_config("security"),
        verbosity=0,
        interactive=False,
        using="default",
        apps=global_apps,
        plan=[],
    )


# ------------------------------------------------------------------------- group contents


def test_support_staff_hold_exactly_the_support_permissions():
    assert group_permissions(roles.SUPPORT) == SUPPORT_PERMISSIONS


def test_auditors_hold_only_audit_read_permissions():
    assert group_permissions(roles.AUDITORS) == AUDITOR_PERMISSIONS


def test_administrators_hold_every_directory_security_and_user_permission():
    held = group_permissions(roles.ADMINISTRATORS)
    user_management = {f"auth.{action}_user" for action in ("view", "add", "change", "delete")}
    apps = ("directory", "security", "subscriptions")
    assert held == all_permissions_of(*apps) | user_management
    assert "subscriptions.change_channel" in held  # listed after security: synced after it too
    # The per-type admin pages of the directory are among them.
    assert "directory.change_organizationrecord" in held
    assert "auth.change_group" not in held and "auth.change_permission" not in held


def test_the_migration_creates_the_permissions_and_groups_it_needs():
    """Runs 0003's function on the state before it, as on a fresh database before post_migrate."""
    Group.objects.filter(name__in=[role.group for role in roles.ROLES]).delete()
    Permission.objects.filter(content_type__app_label="security").delete()
    state = MigrationLoader(connection).project_state(("security", "0003_roles"), at_end=False)
    migration = importlib.import_module("security.migrations.0003_roles")

    migration.create_roles(state.apps, SimpleNamespace(connection=connection))

    assert group_permissions(roles.SUPPORT) == SUPPORT_PERMISSIONS
    assert group_permissions(roles.AUDITORS) == AUDITOR_PERMISSIONS
    assert "security.change_trustanchor" in group_permissions(roles.ADMINISTRATORS)


def test_a_later_models_permissions_reach_the_administrators_after_migrate():
    new_type = ContentType.objects.create(app_label="directory", model="futurerecord")
    new_permission = Permission.objects.create(
        content_type=new_type, codename="change_futurerecord", name="Can change future record"
    )
    assert "directory.change_futurerecord" not in group_permissions(roles.ADMINISTRATORS)

    announce_migrate()

    assert "directory.change_futurerecord" in group_permissions(roles.ADMINISTRATORS)
    assert not Group.objects.get(name=roles.SUPPORT).permissions.filter(pk=new_permission.pk)


def test_resync_removes_permissions_added_to_a_role_by_hand():
    support = Group.objects.get(name=roles.SUPPORT)
    support.permissions.add(Permission.objects.get(codename="change_apiclient"))

    call_command("migrate", verbosity=0)

    assert group_permissions(roles.SUPPORT) == SUPPORT_PERMISSIONS


def test_resync_is_idempotent():
    announce_migrate()
    announce_migrate()
    assert Group.objects.filter(name=roles.SUPPORT).count() == 1
    assert group_permissions(roles.AUDITORS) == AUDITOR_PERMISSIONS


# ------------------------------------------------------------------------- the admin enforces them


@pytest.fixture
def support(client):
    client.force_login(make_staff("sam", "support"))
    return client


@pytest.fixture
def auditor(client):
    client.force_login(make_staff("ada", "auditor"))
    return client


def admin_url(model, view: str = "changelist", *args) -> str:
    if not admin.site.is_registered(model):
        pytest.skip(f"{model.__name__} has no admin page yet")
    meta = model._meta
    return f"/admin/{meta.app_label}/{meta.model_name}/" + (
        f"{args[0]}/change/" if view == "change" else ""
    )


def test_support_staff_cannot_manage_users(support):
    assert support.get("/admin/auth/user/").status_code == 403
    assert support.get("/admin/auth/user/add/").status_code == 403
    assert support.get("/admin/auth/group/").status_code == 403


def test_support_staff_cannot_open_a_trust_anchor(support):
    community = TrustCommunity.objects.create(name="Community A", slug="a")
    anchor = TrustAnchor.objects.create(
        community=community,
        kind=TrustAnchor.ROOT,
        certificate_pem="-",
        subject="CN=Root A",
        fingerprint_sha256="ab" * 32,
        not_before="2025-01-01T00:00:00Z",
        not_after="2035-01-01T00:00:00Z",
    )
    assert support.get(admin_url(TrustAnchor, "change", anchor.pk)).status_code == 403
    assert support.get(admin_url(TrustAnchor)).status_code == 403


def test_support_staff_cannot_reach_any_directory_admin_page(support):
    directory_models = [m for m in admin.site._registry if m._meta.app_label == "directory"]
    if not directory_models:
        pytest.skip("no directory admin pages yet")
    for model in directory_models:
        assert support.get(admin_url(model)).status_code == 403, model.__name__
        assert support.get(admin_url(model) + "add/").status_code == 403, model.__name__


def test_support_staff_find_clients(support):
    from security.models import ApiClient

    assert support.get(admin_url(ApiClient)).status_code == 200


def test_auditors_read_audit_records_but_cannot_change_them():
    user = make_staff("ada", "auditor")
    assert user.has_perm("security.view_requestaudit")
    assert user.has_perm("security.view_keyevent")
    assert not user.has_perm("security.change_requestaudit")
    assert not user.has_perm("security.delete_requestaudit")
    assert not user.has_perm("security.view_apikey")


def test_auditors_open_the_audit_list_read_only(auditor):
    url = admin_url(RequestAudit)
    assert auditor.get(url).status_code == 200
    assert auditor.get(url + "add/").status_code == 403


def test_auditors_open_key_events(auditor):
    assert auditor.get(admin_url(KeyEvent)).status_code == 200


def test_auditors_cannot_see_clients(auditor):
    from security.models import ApiClient

    assert auditor.get(admin_url(ApiClient)).status_code == 403


def test_auditors_cannot_see_keys(auditor):
    assert auditor.get(admin_url(ApiKey)).status_code == 403
