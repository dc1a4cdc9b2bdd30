from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Transport security"

    def ready(self):
        # Importing registers the production-readiness system checks.
        from . import checks  # noqa: F401
