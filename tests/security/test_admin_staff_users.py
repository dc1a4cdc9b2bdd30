"""The web admin's user pages cannot raise anyone's privileges (security/staff_policy.py).

Each escalation is tried the way a browser would: a POST of the whole change form, with the
values a hostile administrator would put in it, whether or not the page offers the field.
"""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from security import admin_staff, staff_policy
from security.roles import ADMINISTRATORS, SUPPORT

from .staff import PASSWORD, fast_passwords, make_staff, permissions, signed_in_as  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

TOTP_LIST = "/admin/otp_totp/totpdevice/"
# Permissions no role holds: they open group definitions and second factors.
BEYOND_ADMINISTRATORS = ("auth.change_group", "otp_totp.add_totpdevice", "otp_totp.view_totpdevice")


def change_url(user) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def change_form(user, **changes) -> dict:
    """The change form as the page would post it for `user`, with `changes` applied.

    A flag is posted "on" when set and left out when not, as a browser does with a checkbox.
    """
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [permission.pk for permission in user.user_permissions.all()],
        **{flag: "on" for flag in ("is_active", "is_staff", "is_superuser") if getattr(user, flag)},
    }
    data.update(changes)
    return data


def group_ids(user) -> set[int]:
    return set(user.groups.values_list("pk", flat=True))


@pytest.fixture
def ann():
    return make_staff("ann", "admin")


@pytest.fixture
def bob():
    return make_staff("bob", "support")


@pytest.fixture
def as_ann(ann):
    return signed_in_as(ann)


@pytest.fixture
def custodians():
    """A group holding more than the administrators: group definitions and OTP devices."""
    group = Group.objects.create(name="Key custodians")
    group.permissions.set(permissions(*BEYOND_ADMINISTRATORS))
    return group


@pytest.fixture
def root():
    return User.objects.create_superuser("root", password=PASSWORD)


# ------------------------------------------------------------------------- superuser status


def test_an_administrator_cannot_make_themselves_superuser(as_ann, ann):
    as_ann.post(change_url(ann), change_form(ann, is_superuser="on"))

    ann.refresh_from_db()
    assert not ann.is_superuser
    assert as_ann.get(TOTP_LIST).status_code == 403


def test_a_forged_superuser_flag_for_another_user_is_ignored(as_ann, bob):
    response = as_ann.post(change_url(bob), change_form(bob, is_superuser="on", first_name="Bob"))

    assert response.status_code == 302, "the rest of the form is saved"
    bob.refresh_from_db()
    assert bob.first_name == "Bob"
    assert not bob.is_superuser


def test_not_even_a_superuser_sets_superuser_status_in_the_web_admin(root, bob):
    as_root = signed_in_as(root)
    page = as_root.get(change_url(bob))
    assert "is_superuser" not in page.context["adminform"].form.fields

    as_root.post(change_url(bob), change_form(bob, is_superuser="on"))

    bob.refresh_from_db()
    assert not bob.is_superuser


def test_forged_privileges_on_the_add_page_are_ignored(as_ann):
    response = as_ann.post(
        reverse("admin:auth_user_add"),
        {
            "username": "sue",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "is_superuser": "on",
            "is_staff": "on",
            "groups": [Group.objects.get(name=ADMINISTRATORS).pk],
            "user_permissions": [p.pk for p in permissions(*BEYOND_ADMINISTRATORS)],
        },
    )

    assert response.status_code == 302
    sue = User.objects.get(username="sue")
    assert not (sue.is_superuser or sue.is_staff)
    assert not sue.groups.exists() and not sue.user_permissions.exists()


# ------------------------------------------------------------------------- one's own roles


def test_an_administrator_cannot_change_their_own_groups_or_permissions(as_ann, ann):
    support = Group.objects.get(name=SUPPORT)
    before = group_ids(ann)
    own = [p.pk for p in permissions("auth.change_group", "auth.view_group")]

    as_ann.post(
        change_url(ann),
        change_form(ann, groups=[*before, support.pk], user_permissions=own, first_name="Ann"),
    )

    ann.refresh_from_db()
    assert ann.first_name == "Ann", "other fields of one's own account can be changed"
    assert group_ids(ann) == before
    assert not ann.user_permissions.exists()


def test_an_administrator_cannot_deactivate_or_unstaff_themselves(as_ann, ann):
    data = change_form(ann)
    del data["is_active"], data["is_staff"]

    as_ann.post(change_url(ann), data)

    ann.refresh_from_db()
    assert ann.is_active and ann.is_staff


def test_ones_own_roles_are_shown_read_only(as_ann, ann):
    form = as_ann.get(change_url(ann)).context["adminform"].form
    assert not {"is_active", "is_staff", "is_superuser", "groups", "user_permissions"} & set(
        form.fields
    )


# ------------------------------------------------------------------------- granting to others


def test_an_administrator_cannot_add_a_user_to_a_group_holding_more(as_ann, bob, custodians):
    response = as_ann.post(change_url(bob), change_form(bob, groups=[custodians.pk]))

    assert response.status_code == 200, "the form comes back with an error"
    assert response.context["adminform"].form.errors["groups"]
    bob.refresh_from_db()
    assert not bob.groups.filter(pk=custodians.pk).exists()


def test_an_administrator_cannot_give_permissions_they_lack(as_ann, bob):
    beyond = [p.pk for p in permissions(*BEYOND_ADMINISTRATORS)]

    response = as_ann.post(change_url(bob), change_form(bob, user_permissions=beyond))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user_permissions"]
    assert not bob.user_permissions.exists()


def test_the_form_offers_only_what_the_administrator_holds(as_ann, bob, custodians):
    form = as_ann.get(change_url(bob)).context["adminform"].form
    offered_groups = set(form.fields["groups"].queryset.values_list("name", flat=True))
    offered = {
        f"{p.content_type.app_label}.{p.codename}" for p in form.fields["user_permissions"].queryset
    }

    assert offered_groups == {ADMINISTRATORS, SUPPORT, "Auditors"}
    assert not offered & set(BEYOND_ADMINISTRATORS)
    assert "security.retire_apikey" in offered


# ------------------------------------------------------------------------- users above the actor


def test_an_administrator_cannot_take_over_a_superuser(as_ann, root):
    password_url = reverse("admin:auth_user_password_change", args=[root.pk])
    new_password = {"password1": "an0ther long passphrase", "password2": "an0ther long passphrase"}

    assert as_ann.get(password_url).status_code == 403
    assert as_ann.post(password_url, new_password).status_code == 403
    assert as_ann.post(change_url(root), change_form(root, is_active="")).status_code == 403
    root.refresh_from_db()
    assert root.check_password(PASSWORD) and root.is_active


def test_an_administrator_cannot_reactivate_a_user_holding_more(as_ann, custodians):
    keeper = User.objects.create_user("kim", password=PASSWORD, is_staff=True, is_active=False)
    keeper.groups.add(custodians)

    response = as_ann.post(change_url(keeper), change_form(keeper, is_active="on"))

    assert response.status_code == 403
    keeper.refresh_from_db()
    assert not keeper.is_active


def test_an_administrator_cannot_delete_users_holding_more_one_by_one_or_in_bulk(as_ann, bob, root):
    delete_url = reverse("admin:auth_user_delete", args=[root.pk])
    bulk = {"action": "delete_selected", "_selected_action": [root.pk, bob.pk], "post": "yes"}

    assert as_ann.post(delete_url, {"post": "yes"}).status_code == 403
    assert as_ann.post(reverse("admin:auth_user_changelist"), bulk).status_code == 403
    assert User.objects.filter(pk__in=[root.pk, bob.pk]).count() == 2


def test_a_superusers_page_is_read_only_for_an_administrator(as_ann, root):
    page = as_ann.get(change_url(root))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]


# ------------------------------------------------------------------------- legitimate work


def test_an_administrator_adds_and_sets_up_a_support_user(as_ann):
    support = Group.objects.get(name=SUPPORT)
    added = as_ann.post(
        reverse("admin:auth_user_add"),
        {
            "username": "sue",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert added.status_code == 302
    sue = User.objects.get(username="sue")

    saved = as_ann.post(change_url(sue), change_form(sue, is_staff="on", groups=[support.pk]))

    assert saved.status_code == 302
    sue.refresh_from_db()
    assert sue.is_staff and group_ids(sue) == {support.pk}
    assert sue.has_perm("security.retire_apikey")


def test_an_administrator_manages_a_peer_and_support_staff(as_ann, bob):
    peer = make_staff("pat", "admin")
    retire = permissions("security.retire_apikey")[0]

    as_ann.post(change_url(peer), change_form(peer, email="pat@example.org"))
    data = change_form(bob, user_permissions=[retire.pk])
    del data["is_active"]
    as_ann.post(change_url(bob), data)
    as_ann.post(reverse("admin:auth_user_delete", args=[peer.pk]), {"post": "yes"})

    bob.refresh_from_db()
    assert not bob.is_active and bob.user_permissions.get() == retire
    assert not User.objects.filter(pk=peer.pk).exists()


def test_a_superuser_manages_staff(root, bob):
    custodians = Group.objects.create(name="Key custodians")
    custodians.permissions.set(permissions(*BEYOND_ADMINISTRATORS))
    admins = Group.objects.get(name=ADMINISTRATORS)
    as_root = signed_in_as(root)

    response = as_root.post(change_url(bob), change_form(bob, groups=[admins.pk, custodians.pk]))

    assert response.status_code == 302
    assert group_ids(bob) == {admins.pk, custodians.pk}
    assert as_root.get(TOTP_LIST).status_code == 200


# ------------------------------------------------------------------------- the reported attack


def test_the_reported_escalation_fails_for_an_administrator_signed_in_with_otp(
    client, ann, settings
):
    """Password and TOTP sign-in, tick superuser on one's own account, open the TOTP devices."""
    from django_otp.oath import totp

    settings.ADMIN_REQUIRE_OTP = True
    device = TOTPDevice.objects.create(user=ann, name="phone")
    token = f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"
    signed_in = client.post(
        "/admin/login/",
        {
            "username": "ann",
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": token,
            "next": "/admin/",
        },
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"

    client.post(change_url(ann), change_form(ann, is_superuser="on"))

    ann.refresh_from_db()
    assert not ann.is_superuser
    assert client.get(TOTP_LIST).status_code == 403
    config = reverse("admin:otp_totp_totpdevice_config", args=[device.pk])
    assert client.get(config).status_code == 403


# ------------------------------------------------------------------------- the save is checked too


def test_a_grant_the_form_let_through_is_refused_on_save_and_undone(
    as_ann, bob, custodians, monkeypatch
):
    """Should a form ever offer too much, the check of the saved state still refuses it."""
    monkeypatch.setitem(admin_staff.USER_GRANTS, "groups", lambda actor: Group.objects.all())

    response = as_ann.post(
        change_url(bob), change_form(bob, groups=[custodians.pk], email="bob@example.org")
    )

    assert response.status_code == 403
    bob.refresh_from_db()
    assert bob.email == "" and not bob.groups.filter(pk=custodians.pk).exists()


def test_a_superuser_flag_the_form_let_through_is_refused_on_save(as_ann, ann, monkeypatch):
    monkeypatch.setattr(staff_policy, "frozen_user_fields", lambda actor, target: ())

    response = as_ann.post(change_url(ann), change_form(ann, is_superuser="on"))

    assert response.status_code == 403
    ann.refresh_from_db()
    assert not ann.is_superuser


def test_own_roles_the_form_let_through_are_refused_on_save(as_ann, ann, monkeypatch):
    monkeypatch.setattr(staff_policy, "frozen_user_fields", lambda actor, target: ("is_superuser",))
    support = Group.objects.get(name=SUPPORT)

    response = as_ann.post(change_url(ann), change_form(ann, groups=[support.pk]))

    assert response.status_code == 403
    assert set(ann.groups.values_list("name", flat=True)) == {ADMINISTRATORS}
