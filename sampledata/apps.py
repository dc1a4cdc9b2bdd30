from django.apps import AppConfig


class SampleDataConfig(AppConfig):
    """Holds `generatedirectory`; no models. It writes through the directory's storage."""

    name = "sampledata"
    verbose_name = "Synthetic directory data"
