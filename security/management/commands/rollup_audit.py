"""Roll the request audit up into hourly counts for the admin's charts, until caught up."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from security import audit_rollup, charts


class Command(BaseCommand):
    help = (
        "Roll every settled hour of the request audit (within the charts' longest range) up "
        "into hourly counts. Page views do this a day at a time; run it from cron, or once "
        "after deploying, so the charts never read more than the last hour from the audit."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        oldest = charts.window(charts.LONGEST, now)[0]
        target = audit_rollup.settled_until(now)
        boundary = audit_rollup.roll_up(now, oldest)
        while boundary < target:
            boundary = audit_rollup.roll_up(now, oldest)
        self.stdout.write(f"Audit rolled up until {boundary:%Y-%m-%d %H:%M %Z}.")
