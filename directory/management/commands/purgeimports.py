"""Remove finished `$import` jobs older than FHIR_IMPORT_KEEP_SECONDS, with their files."""

from typing import Any

from django.core.management.base import BaseCommand

from directory.bulkimport_jobs import purge


class Command(BaseCommand):
    help = "Delete finished import jobs past FHIR_IMPORT_KEEP_SECONDS and their error files."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"purged {purge()} finished import job(s)")
