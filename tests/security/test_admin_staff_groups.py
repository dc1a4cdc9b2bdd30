"""Group pages and the credential pages of the web admin cannot raise anyone's privileges.

A group's permissions reach every member, so putting a permission into a group is granting it;
OTP devices and lockout records open the second factor and the lockout themselves.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from security import staff_policy
from security.roles import ADMINISTRATORS, SUPPORT
from security.superuser_only import SUPERUSER_ONLY_APPS

from .staff import PASSWORD, fast_passwords, make_staff, permissions, signed_in_as  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

GROUP_MANAGEMENT = tuple(f"auth.{action}_group" for action in ("view", "add", "change", "delete"))
HELD = ("security.view_apiclient", "security.view_apikey")


def group_form(name: str, permission_rows) -> dict:
    return {"name": name, "permissions": [p.pk for p in permission_rows]}


def labels(group: Group) -> set[str]:
    rows = group.permissions.select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}" for p in rows}


@pytest.fixture
def gus():
    """Staff who may manage groups, and holds two security permissions besides."""
    user = User.objects.create_user("gus", password=PASSWORD, is_staff=True)
    user.user_permissions.set(permissions(*GROUP_MANAGEMENT, *HELD))
    return user


@pytest.fixture
def as_gus(gus):
    return signed_in_as(gus)


@pytest.fixture
def helpers():
    group = Group.objects.create(name="Helpers")
    group.permissions.set(permissions("security.view_apiclient"))
    return group


def change_url(group) -> str:
    return reverse("admin:auth_group_change", args=[group.pk])


# ------------------------------------------------------------------------- group permissions


def test_a_group_cannot_be_given_a_permission_its_editor_lacks(as_gus, helpers):
    wanted = permissions("security.view_apiclient", "otp_totp.add_totpdevice")

    response = as_gus.post(change_url(helpers), group_form("Helpers", wanted))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["permissions"]
    assert labels(helpers) == {"security.view_apiclient"}


def test_a_new_group_cannot_hold_a_permission_its_creator_lacks(as_gus):
    wanted = permissions("security.view_apiclient", "auth.change_user")

    as_gus.post(reverse("admin:auth_group_add"), group_form("Wider", wanted))

    assert not Group.objects.filter(name="Wider").exists()


def test_a_permission_the_form_let_through_is_refused_on_save_and_undone(
    as_gus, helpers, monkeypatch
):
    """Should the form ever offer too much, the check of the saved group still refuses it."""
    monkeypatch.setattr(staff_policy, "grantable_permissions", lambda actor: Permission.objects)
    wanted = permissions("security.view_apiclient", "otp_totp.add_totpdevice")

    response = as_gus.post(change_url(helpers), group_form("Renamed", wanted))

    assert response.status_code == 403
    helpers.refresh_from_db()
    assert helpers.name == "Helpers" and labels(helpers) == {"security.view_apiclient"}


def test_nobody_changes_a_group_they_belong_to(as_gus, gus, helpers):
    gus.groups.add(helpers)

    response = as_gus.post(change_url(helpers), group_form("Helpers", permissions(*HELD)))

    assert response.status_code == 403
    assert labels(helpers) == {"security.view_apiclient"}


def test_a_group_holding_more_than_its_editor_is_read_only_to_them(as_gus, helpers):
    helpers.permissions.add(*permissions("otp_totp.view_totpdevice"))
    delete_url = reverse("admin:auth_group_delete", args=[helpers.pk])
    bulk = {"action": "delete_selected", "_selected_action": [helpers.pk], "post": "yes"}

    assert as_gus.post(change_url(helpers), group_form("Renamed", [])).status_code == 403
    assert as_gus.post(delete_url, {"post": "yes"}).status_code == 403
    assert as_gus.post(reverse("admin:auth_group_changelist"), bulk).status_code == 403
    helpers.refresh_from_db()
    assert helpers.name == "Helpers"


def test_the_role_groups_are_read_only_even_to_a_superuser():
    root = User.objects.create_superuser("root", password=PASSWORD)
    support = Group.objects.get(name=SUPPORT)
    before = labels(support)
    everything = Permission.objects.all()

    response = signed_in_as(root).post(change_url(support), group_form(SUPPORT, everything))

    assert response.status_code == 403
    assert labels(support) == before


def test_a_group_manager_builds_a_group_from_what_they_hold(as_gus, helpers):
    as_gus.post(reverse("admin:auth_group_add"), group_form("Viewers", permissions(*HELD)))
    as_gus.post(change_url(helpers), group_form("Helpers", permissions(*HELD)))

    assert labels(Group.objects.get(name="Viewers")) == set(HELD)
    assert labels(helpers) == set(HELD)


def test_administrators_cannot_reach_group_pages():
    as_ann = signed_in_as(make_staff("ann", "admin"))
    assert as_ann.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert as_ann.get(change_url(Group.objects.get(name=ADMINISTRATORS))).status_code == 403


# ------------------------------------------------------------------------- superuser-only pages


def credential_models() -> list:
    return [model for model in admin.site._registry if model._meta.app_label in SUPERUSER_ONLY_APPS]


def model_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def holder_of_every_credential_permission():
    """Staff given every permission of the credential apps directly, as a superuser might."""
    user = User.objects.create_user("carl", password=PASSWORD, is_staff=True)
    models = credential_models()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in={m._meta.app_label for m in models})
    )
    return user


def test_the_credential_pages_are_there():
    found = {model._meta.label for model in credential_models()}
    assert found >= {"otp_totp.TOTPDevice", "axes.AccessAttempt"}


def test_credential_pages_are_closed_to_staff_holding_their_permissions(
    holder_of_every_credential_permission,
):
    browser = signed_in_as(holder_of_every_credential_permission)
    for model in credential_models():
        assert browser.get(model_url(model, "changelist")).status_code == 403, model
        assert browser.get(model_url(model, "add")).status_code == 403, model


def test_totp_device_pages_are_closed_to_staff_holding_their_permissions(
    holder_of_every_credential_permission,
):
    browser = signed_in_as(holder_of_every_credential_permission)
    device = TOTPDevice.objects.create(user=make_staff("ann", "admin"), name="phone")
    for view in ("change", "delete", "history"):
        assert browser.get(model_url(TOTPDevice, view, device.pk)).status_code == 403, view
    for view in ("config", "qrcode"):
        url = reverse(f"admin:otp_totp_totpdevice_{view}", args=[device.pk])
        assert browser.get(url).status_code == 403, view
    assert "otp_totp" not in browser.get("/admin/").content.decode()


def test_a_superuser_still_manages_otp_devices_and_lockouts():
    browser = signed_in_as(User.objects.create_superuser("root", password=PASSWORD))
    for model in credential_models():
        assert browser.get(model_url(model, "changelist")).status_code == 200, model


def test_not_even_a_superuser_reads_an_existing_devices_secret():
    browser = signed_in_as(User.objects.create_superuser("root", password=PASSWORD))
    device = TOTPDevice.objects.create(user=make_staff("ann", "admin"), name="phone")

    page = browser.get(model_url(TOTPDevice, "change", device.pk))

    assert page.status_code == 200
    assert device.key not in page.content.decode()
    for view in ("config", "qrcode"):
        url = reverse(f"admin:otp_totp_totpdevice_{view}", args=[device.pk])
        assert browser.get(url).status_code == 403, view
