"""Retire a key at once, e.g. because it leaked."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from security.keys import KeyActionError, command_actor, retire_key
from security.models import ApiKey


class Command(BaseCommand):
    help = "Retire the key with PREFIX immediately. A reason is required."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        key = find_key(options["prefix"])
        try:
            retire_key(key, command_actor(), options["reason"])
        except KeyActionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Retired key {key.prefix} of {key.client.name}.")


def find_key(prefix: str) -> ApiKey:
    try:
        return ApiKey.objects.select_related("client").get(prefix=prefix)
    except ApiKey.DoesNotExist as exc:
        raise CommandError(f"no key with prefix {prefix!r}") from exc
