"""Admin pages that can mint sign-in credentials or undo sign-in defences: superusers only.

A TOTP (or static, HOTP, e-mail) device lets whoever holds its secret pass the admin's second
factor as its user, and django-axes' records are the lockout itself: no permission a superuser
hands out opens these pages, whatever the group or user permissions say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.auth.models import PermissionsMixin
from django.db.models import Model
from django.http import HttpRequest

# Apps whose every model admin is closed to everyone but superusers.
SUPERUSER_ONLY_APPS = frozenset({"otp_totp", "otp_static", "otp_hotp", "otp_email", "axes"})


# The type checker sees the mixin as the ModelAdmin it always precedes; at run time a plain mixin.
if TYPE_CHECKING:
    _Mixin = admin.ModelAdmin
else:
    _Mixin = object


class SuperuserOnlyMixin(_Mixin):
    """Put in front of a ModelAdmin: every page and action of it needs a superuser."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_superuser(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_superuser(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return _is_superuser(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_superuser(request) and super().has_delete_permission(request, obj)


def restrict(site: AdminSite) -> None:
    """Re-register each model admin of SUPERUSER_ONLY_APPS behind SuperuserOnlyMixin; idempotent.

    Runs from the security app's ready(), after discovering every app's admin module, so it sees
    them whatever the order of INSTALLED_APPS.
    """
    admin.autodiscover()
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label not in SUPERUSER_ONLY_APPS:
            continue
        if isinstance(model_admin, SuperuserOnlyMixin):
            continue
        restricted = type(
            f"SuperuserOnly{type(model_admin).__name__}",
            (SuperuserOnlyMixin, type(model_admin)),
            {"__module__": __name__},
        )
        site.unregister(model)
        site.register(model, restricted)


def _is_superuser(request: HttpRequest) -> bool:
    user = request.user
    return isinstance(user, PermissionsMixin) and user.is_superuser
