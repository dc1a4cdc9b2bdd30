"""Who may grant what on the web admin's staff pages: nobody hands out more than they hold.

The rules (README, "Web admin"), applied by security.admin_staff to what the forms offer and
checked again on the state each save leaves:

- superuser status is never set or cleared in the web admin (`manage.py createsuperuser` makes one);
- nobody changes their own roles: active, staff and superuser flags, groups, permissions;
- a user can be changed, deleted or given a password only by someone who holds every permission
  that user holds; a superuser only by a superuser;
- the groups and permissions given to a user, or put into a group, are ones the giver holds;
- nobody changes a group they belong to, and the role groups of security.roles are defined in
  code (and re-synced by every migrate), so they are read-only here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractUser, Group, Permission
from django.db.models import Q, QuerySet

from .roles import ROLES

# Never a field of a web-admin form, for anyone.
NEVER_EDITABLE = ("is_superuser",)
# A user's roles: frozen on their own account.
ROLE_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")
ROLE_GROUPS = frozenset(role.group for role in ROLES)


def held_permissions(user: AbstractUser) -> frozenset[int]:
    """Ids of the permissions `user` holds directly or through a group, active or not.

    Not user.get_all_permissions(): that is empty for an inactive user, who would then look
    harmless enough to manage, and be reactivated with everything they hold.
    """
    if user.pk is None:
        return frozenset()
    rows = Permission.objects.filter(Q(user=user) | Q(group__user=user))
    return frozenset(rows.values_list("pk", flat=True))


def group_permissions(group: Group) -> frozenset[int]:
    if group.pk is None:
        return frozenset()
    return frozenset(group.permissions.values_list("pk", flat=True))


def is_self(actor: AbstractUser, target: AbstractUser | None) -> bool:
    return target is not None and target.pk is not None and target.pk == actor.pk


def frozen_user_fields(actor: AbstractUser, target: AbstractUser | None) -> tuple[str, ...]:
    """The fields of `target`'s form that `actor` may not change."""
    return ROLE_FIELDS if is_self(actor, target) else NEVER_EDITABLE


def may_manage_user(actor: AbstractUser, target: AbstractUser) -> bool:
    """Whether `actor` may change, delete or set the password of `target`."""
    if actor.is_superuser:
        return True
    if target.is_superuser:
        return False
    return held_permissions(target) <= held_permissions(actor)


def may_manage_group(actor: AbstractUser, group: Group) -> bool:
    """Whether `actor` may change or delete `group` (its name and permissions)."""
    if group.name in ROLE_GROUPS:
        return False
    if actor.is_superuser:
        return True
    if group.pk is not None and group.user_set.filter(pk=actor.pk).exists():
        return False
    return group_permissions(group) <= held_permissions(actor)


def grantable_permissions(actor: AbstractUser) -> QuerySet[Permission]:
    """The permissions `actor` may give to a user or put into a group."""
    if actor.is_superuser:
        return Permission.objects.all()
    return Permission.objects.filter(pk__in=held_permissions(actor))


def grantable_groups(actor: AbstractUser) -> QuerySet[Group]:
    """The groups `actor` may add a user to: those holding nothing `actor` lacks."""
    if actor.is_superuser:
        return Group.objects.all()
    beyond = Permission.objects.exclude(pk__in=held_permissions(actor))
    return Group.objects.exclude(permissions__in=beyond)


def user_refusal(
    actor_before: Snapshot, target: AbstractUser, target_before: Snapshot
) -> str | None:
    """Why the saved state of `target` is not one `actor` could give, or None when it is.

    `actor_before` and `target_before` are `Snapshot`s taken before the save.
    """
    if target.is_superuser != target_before.is_superuser:
        return "superuser status cannot be changed in the web admin"
    if target_before.pk == actor_before.pk:
        if Snapshot.of(target) != target_before:
            return "users cannot change their own roles"
        return None
    if actor_before.is_superuser:
        return None
    if target.is_superuser:
        return "only a superuser can manage a superuser"
    if not held_permissions(target) <= actor_before.permissions:
        return "a user cannot be given permissions the editor does not hold"
    return None


def group_refusal(actor_before: Snapshot, group: Group) -> str | None:
    """Why the saved state of `group` is not one `actor` could give, or None when it is."""
    if group.name in ROLE_GROUPS:
        return "the role groups are defined by the application"
    if actor_before.is_superuser:
        return None
    if actor_before.pk is not None and group.user_set.filter(pk=actor_before.pk).exists():
        return "users cannot change a group they belong to"
    if not group_permissions(group) <= actor_before.permissions:
        return "a group cannot be given permissions the editor does not hold"
    return None


@dataclass(frozen=True)
class Snapshot:
    """A user's roles at one moment, to compare the state a save leaves with the one before it."""

    pk: int | None
    is_superuser: bool
    is_active: bool
    is_staff: bool
    groups: frozenset[int]
    direct: frozenset[int]
    permissions: frozenset[int]

    @classmethod
    def of(cls, user: AbstractUser) -> Snapshot:
        saved = user.pk is not None
        return cls(
            pk=user.pk,
            is_superuser=bool(user.is_superuser),
            is_active=bool(user.is_active),
            is_staff=bool(user.is_staff),
            groups=frozenset(user.groups.values_list("pk", flat=True)) if saved else frozenset(),
            direct=(
                frozenset(user.user_permissions.values_list("pk", flat=True))
                if saved
                else frozenset()
            ),
            permissions=held_permissions(user),
        )
