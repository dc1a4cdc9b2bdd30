from django.apps import AppConfig

# The admin index's headings of the sign-in apps (superusers only: security/superuser_only.py).
THIRD_PARTY_APP_NAMES = {"otp_totp": "Two-factor devices", "axes": "Sign-in lockouts"}


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Transport security"

    def ready(self) -> None:
        # Importing registers the production-readiness system checks.
        from . import checks  # noqa: F401

        self._connect_role_sync()
        self._connect_client_memo()
        self._restrict_credential_admins()
        self._name_third_party_apps()

    def _connect_role_sync(self) -> None:
        """Keeps the staff role groups complete when later migrations add models."""
        from django.db.models.signals import post_migrate

        from .roles import sync_groups_after_migrate

        post_migrate.connect(sync_groups_after_migrate, sender=self)

    def _connect_client_memo(self) -> None:
        """A saved or deleted client or identity is not answered from the certificate memo."""
        from django.db.models.signals import post_delete, post_save

        from . import certclients
        from .models import ApiClient, CertificateIdentity

        for signal in (post_save, post_delete):
            signal.connect(certclients.client_changed, sender=ApiClient)
            signal.connect(certclients.identity_changed, sender=CertificateIdentity)

    def _restrict_credential_admins(self) -> None:
        """OTP device and lockout pages are for superusers only (security/superuser_only.py)."""
        from django.contrib import admin

        from .superuser_only import restrict

        restrict(admin.site)

    def _name_third_party_apps(self) -> None:
        """The admin index names these apps by what they do here, not by their package label."""
        from django.apps import apps

        for label, name in THIRD_PARTY_APP_NAMES.items():
            config = apps.app_configs.get(label)
            if config is not None:
                config.verbose_name = name
