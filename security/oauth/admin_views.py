"""The admin page of the token signing keys: which keys are published, and a rotate button."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from ..models import SigningKey
from . import signing

TEMPLATE = "admin/security/signing_keys.html"
PERMISSION = "security.rotate_signingkey"


def can_rotate(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Superusers and directory administrators (their role holds every security permission)."""
    return (
        isinstance(user, AbstractUser)
        and user.is_active
        and user.is_staff
        and user.has_perm(PERMISSION)
    )


def signing_keys(request: HttpRequest) -> HttpResponse:
    """GET lists the keys; POST rotates. Mounted behind admin.site.admin_view (sign-in, OTP)."""
    if not can_rotate(request.user):
        raise PermissionDenied
    if request.method == "POST":
        new = signing.rotate(actor=request.user.get_username())
        messages.success(
            request,
            f"New signing key {new.kid}; the previous key stays published for "
            f"{int(signing.overlap().total_seconds())} seconds and signs nothing more.",
        )
        return redirect("security-signing-keys")
    context = {
        **admin.site.each_context(request),
        "title": "Token signing keys",
        "keys": SigningKey.objects.order_by("-created"),
        "published": {row.pk for row in signing.published_rows()},
    }
    return TemplateResponse(request, TEMPLATE, context)
