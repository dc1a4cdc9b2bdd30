"""The web admin's user and group pages under security.staff_policy.

Two layers: the forms offer only what the signed-in user may give (fields they may not change are
read-only, so a forged value in the POST is not even read), and every save is checked again on
the state it leaves, inside the admin's transaction, so a refusal there undoes the whole save.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TypeVar

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import PermissionDenied
from django.db.models import ManyToManyField, Model, QuerySet
from django.forms import ModelForm, ModelMultipleChoiceField
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from . import staff_policy
from .staff_policy import Snapshot

log = logging.getLogger(__name__)

# Shown on the delete confirmation page, as a kind of object the user may not delete.
NOT_YOURS_TO_DELETE = "users or groups holding permissions you lack, or role groups"

# get_deleted_objects' result: (objects shown, counts by model, permissions lacking, protected).
Deletion = tuple[list[Any], dict[str, int], set[str], list[Any]]
Managed = TypeVar("Managed", bound=Model)  # a user or a group

USER_GRANTS: dict[str, Callable[[AbstractUser], QuerySet[Any]]] = {
    "groups": staff_policy.grantable_groups,
    "user_permissions": staff_policy.grantable_permissions,
}


def staff_user(request: HttpRequest | None) -> AbstractUser:
    """The signed-in user; admin_view lets only active staff reach these pages, so anything else
    is refused rather than guessed at."""
    user = request.user if request is not None else None
    if not isinstance(user, AbstractUser):
        raise PermissionDenied
    return user


def refuse(request: HttpRequest, refusal: str) -> NoReturn:
    """Fail the save: PermissionDenied inside the admin's transaction rolls it back (403)."""
    log.warning("staff change by %s refused: %s", request.user.get_username(), refusal)
    raise PermissionDenied(refusal)


def refuse_deleting_unmanageable(
    deletion: Deletion,
    objs: Iterable[Managed],
    may_manage: Callable[[AbstractUser, Managed], bool],
    actor: AbstractUser,
) -> Deletion:
    """get_deleted_objects' result, with one more kind of object needing rights if any is held back.

    The delete page and the bulk "delete selected" action both refuse while this is non-empty.
    """
    deleted, counts, perms_needed, protected = deletion
    if not all(may_manage(actor, obj) for obj in objs):
        return deleted, counts, {*perms_needed, NOT_YOURS_TO_DELETE}, protected
    return deletion


class StaffUserAdmin(UserAdmin):
    def get_readonly_fields(
        self, request: HttpRequest, obj: AbstractUser | None = None
    ) -> tuple[str, ...]:
        frozen = staff_policy.frozen_user_fields(staff_user(request), obj)
        return (*super().get_readonly_fields(request, obj), *frozen)

    def formfield_for_manytomany(
        self,
        db_field: ManyToManyField[Any, Any],
        request: HttpRequest,
        **kwargs: Any,
    ) -> ModelMultipleChoiceField[Any] | None:
        grantable = USER_GRANTS.get(db_field.name)
        if grantable is not None:
            kwargs["queryset"] = grantable(staff_user(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: AbstractUser | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_user(staff_user(request), obj))

    def has_delete_permission(self, request: HttpRequest, obj: AbstractUser | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_user(staff_user(request), obj))

    def get_deleted_objects(
        self, objs: Sequence[AbstractUser] | QuerySet[AbstractUser], request: HttpRequest
    ) -> Deletion:
        deletion = super().get_deleted_objects(objs, request)
        return refuse_deleting_unmanageable(
            deletion, objs, staff_policy.may_manage_user, staff_user(request)
        )

    def save_model(
        self, request: HttpRequest, obj: AbstractUser, form: ModelForm[Any], change: bool
    ) -> None:
        stored = type(obj)._default_manager.get(pk=obj.pk) if change else type(obj)()
        # The admin hands this same form to save_related, which checks the state left against it.
        form.staff_before = (Snapshot.of(staff_user(request)), Snapshot.of(stored))  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(
        self,
        request: HttpRequest,
        form: ModelForm[Any],
        formsets: Sequence[BaseInlineFormSet[Any, Any, Any]],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        actor_before, target_before = form.staff_before  # type: ignore[attr-defined]  # save_model's
        refusal = staff_policy.user_refusal(actor_before, form.instance, target_before)
        if refusal:
            refuse(request, refusal)


class StaffGroupAdmin(GroupAdmin):
    def formfield_for_manytomany(
        self,
        db_field: ManyToManyField[Any, Any],
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> ModelMultipleChoiceField[Any] | None:
        if db_field.name == "permissions":
            kwargs["queryset"] = staff_policy.grantable_permissions(staff_user(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_group(staff_user(request), obj))

    def has_delete_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or staff_policy.may_manage_group(staff_user(request), obj))

    def get_deleted_objects(
        self, objs: Sequence[Group] | QuerySet[Group], request: HttpRequest
    ) -> Deletion:
        deletion = super().get_deleted_objects(objs, request)
        return refuse_deleting_unmanageable(
            deletion, objs, staff_policy.may_manage_group, staff_user(request)
        )

    def save_model(
        self, request: HttpRequest, obj: Group, form: ModelForm[Group], change: bool
    ) -> None:
        # As for users: save_related checks the saved group against the editor before the save.
        form.staff_before = Snapshot.of(staff_user(request))  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(
        self,
        request: HttpRequest,
        form: ModelForm[Group],
        formsets: Sequence[BaseInlineFormSet[Any, Any, Any]],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        before = form.staff_before  # type: ignore[attr-defined]  # set by save_model
        refusal = staff_policy.group_refusal(before, form.instance)
        if refusal:
            refuse(request, refusal)


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), StaffUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, StaffGroupAdmin)
