"""Two-factor sign-in for the admin: django-otp's OTPAdminSite, applied when it is required.

The requirement is read on every request (ADMIN_REQUIRE_OTP, or the environment when it is
unset), so one admin site serves both a production deployment and a development run.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


def otp_required() -> bool:
    """ADMIN_REQUIRE_OTP when set; otherwise required in production only."""
    explicit = getattr(settings, "ADMIN_REQUIRE_OTP", None)
    if explicit is None:
        return settings.ENVIRONMENT == "prod"
    return bool(explicit)


class OTPWhenRequiredAdminSite(OTPAdminSite):
    """OTPAdminSite whose device check, login form and template apply only when OTP is required."""

    @property
    def login_form(self) -> type[AdminAuthenticationForm]:
        return OTPAdminAuthenticationForm if otp_required() else AdminAuthenticationForm

    @property
    def login_template(self) -> str | None:
        return OTPAdminSite.login_template if otp_required() else None

    def has_permission(self, request: HttpRequest) -> bool:
        if otp_required():
            return super().has_permission(request)
        return AdminSite.has_permission(self, request)


def apply_to(site: AdminSite) -> None:
    """Switch an existing site (keeping every registered model admin) to the OTP-aware class."""
    site.__class__ = OTPWhenRequiredAdminSite
