"""Settle lapsed keys: run on a schedule so states in the admin match the dates."""

from typing import Any

from django.core.management.base import BaseCommand

from security.keys import command_actor, expire_keys


class Command(BaseCommand):
    help = "Retire rotating keys past their grace period and expire keys past their expiry date."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = expire_keys(actor=command_actor())
        self.stdout.write(
            f"Retired {counts['retired']} rotated key(s); expired {counts['expired']}."
        )
