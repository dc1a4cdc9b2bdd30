"""The web admin's user and group pages under security.staff_policy.

Two layers: the forms offer only what the signed-in user may give (fields they may not change are
read-only, so a forged value in the POST is not even read), and every save is checked again on
the state it leaves, inside the admin's transaction, so a refusal there undoes the whole save.
"""

from __future__ import annotations

import logging

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from . import staff_policy
from .staff_policy import Snapshot

log = logging.getLogger(__name__)

# Shown on the delete confirmation page, as a kind of object the user may not delete.
NOT_YOURS_TO_DELETE = "users or groups holding permissions you lack, or role groups"

USER_GRANTS = {
    "groups": staff_policy.grantable_groups,
    "user_permissions": staff_policy.grantable_permissions,
}


def refuse(request, refusal: str):
    """Fail the save: PermissionDenied inside the admin's transaction rolls it back (403)."""
    log.warning("staff change by %s refused: %s", request.user.get_username(), refusal)
    raise PermissionDenied(refusal)


def refuse_deleting_unmanageable(deletion, objs, may_manage, actor):
    """get_deleted_objects' result, with one more kind of object needing rights if any is held back.

    The delete page and the bulk "delete selected" action both refuse while this is non-empty.
    """
    deleted, counts, perms_needed, protected = deletion
    if not all(may_manage(actor, obj) for obj in objs):
        perms_needed = {*perms_needed, NOT_YOURS_TO_DELETE}
    return deleted, counts, perms_needed, protected


class StaffUserAdmin(UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        frozen = staff_policy.frozen_user_fields(request.user, obj)
        return (*super().get_readonly_fields(request, obj), *frozen)

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        grantable = USER_GRANTS.get(db_field.name)
        if grantable is not None:
            kwargs["queryset"] = grantable(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_user(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_user(request.user, obj))

    def get_deleted_objects(self, objs, request):
        deletion = super().get_deleted_objects(objs, request)
        return refuse_deleting_unmanageable(
            deletion, objs, staff_policy.may_manage_user, request.user
        )

    def save_model(self, request, obj, form, change):
        stored = type(obj).objects.get(pk=obj.pk) if change else type(obj)()
        form.staff_before = (Snapshot.of(request.user), Snapshot.of(stored))
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        actor_before, target_before = form.staff_before
        refusal = staff_policy.user_refusal(actor_before, form.instance, target_before)
        if refusal:
            refuse(request, refusal)


class StaffGroupAdmin(GroupAdmin):
    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name == "permissions":
            kwargs["queryset"] = staff_policy.grantable_permissions(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_group(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_group(request.user, obj))

    def get_deleted_objects(self, objs, request):
        deletion = super().get_deleted_objects(objs, request)
        return refuse_deleting_unmanageable(
            deletion, objs, staff_policy.may_manage_group, request.user
        )

    def save_model(self, request, obj, form, change):
        form.staff_before = Snapshot.of(request.user)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        refusal = staff_policy.group_refusal(form.staff_before, form.instance)
        if refusal:
            refuse(request, refusal)


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), StaffUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, StaffGroupAdmin)
