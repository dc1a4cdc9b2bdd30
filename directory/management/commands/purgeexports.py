"""Delete expired Bulk Data export jobs and their files (requests only drop a few each)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from directory.export import purge_expired
from directory.statement_timeout import lift_statement_timeout


class Command(BaseCommand):
    help = "Delete expired export jobs and their NDJSON files."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--batch", type=int, default=50, help="jobs deleted per round")

    def handle(self, *args: Any, batch: int, **options: Any) -> None:
        lift_statement_timeout()
        dropped = 0
        while True:
            done = purge_expired(batch=batch)
            dropped += done
            if done < batch:
                break
        self.stdout.write(f"purged {dropped} expired export job(s)")
