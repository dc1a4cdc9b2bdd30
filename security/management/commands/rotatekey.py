"""Replace a key; the old one keeps working for the chosen grace period."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from security.keys import GRACE_PERIODS, KeyActionError, command_actor, rotate_key

from .issuekey import print_new_key
from .retirekey import find_key


class Command(BaseCommand):
    help = "Issue a replacement for the key with PREFIX; the new key is printed once, on stdout."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--grace", choices=list(GRACE_PERIODS), required=True)
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        key = find_key(options["prefix"])
        grace = GRACE_PERIODS[options["grace"]]
        try:
            new, plaintext = rotate_key(key, grace, command_actor(), options["reason"])
        except KeyActionError as exc:
            raise CommandError(str(exc)) from exc
        until = "now" if key.grace_until is None else key.grace_until.isoformat()
        self.stderr.write(f"Key {key.prefix} is {key.state}, valid until {until}.")
        print_new_key(self, new, plaintext)
