from django.apps import AppConfig
from django.db.models.signals import pre_migrate


class DirectoryConfig(AppConfig):
    name = "directory"
    verbose_name = "Healthcare directory"

    def ready(self) -> None:
        from security.directory_port import register

        from . import checks  # noqa: F401  # registers the database checks
        from .security_facts import DirectoryFacts
        from .statement_timeout import lift_statement_timeout

        # Security asks its questions about the directory through this port, never importing it.
        register(DirectoryFacts())

        # Index builds over a large directory take longer than any request may.
        pre_migrate.connect(lift_statement_timeout, dispatch_uid="directory.lift_timeout")
