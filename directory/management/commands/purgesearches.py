"""Drop every expired search snapshot (requests only drop a few each, to stay quick)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from directory.search.snapshots import purge_expired_snapshots
from directory.statement_timeout import lift_statement_timeout


class Command(BaseCommand):
    help = "Delete expired search snapshots and their stored result lists."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--batch", type=int, default=50, help="snapshots deleted per transaction"
        )

    def handle(self, *args: Any, batch: int, **options: Any) -> None:
        lift_statement_timeout()  # bulk work outlasts the per-request statement timeout
        dropped, now = 0, timezone.now()
        while True:
            done = purge_expired_snapshots(now, batch)
            dropped += done
            if done < batch:
                break
        self.stdout.write(f"purged {dropped} expired search snapshot(s)")
