from django.apps import AppConfig


class PkiConfig(AppConfig):
    """The community PKI toolkit: its CAs live in files; it registers them through security."""

    name = "pki"
    verbose_name = "Community PKI"
