"""Issue an API key for a client and print it once."""

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from security.keys import command_actor, issue_key
from security.models import ApiClient, ApiKey


class Command(BaseCommand):
    help = "Issue a new API key for CLIENT (by name). The key is printed once, on stdout."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("client", help="client name")
        parser.add_argument("--expires-days", type=int, metavar="N")

    def handle(self, *args: Any, **options: Any) -> None:
        client = find_client(options["client"])
        days = options["expires_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-days must be positive")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        key, plaintext = issue_key(client, command_actor(), expires_at=expires_at)
        print_new_key(self, key, plaintext)


def find_client(name: str) -> ApiClient:
    try:
        return ApiClient.objects.get(name=name)
    except ApiClient.DoesNotExist as exc:
        raise CommandError(f"no client named {name!r}") from exc


def print_new_key(command: BaseCommand, key: ApiKey, plaintext: str) -> None:
    """The key alone on stdout (scriptable); the warning on stderr so it is never captured."""
    command.stderr.write(
        f"New key {key.prefix} for {key.client.name}. Store it now: it will not be shown again."
    )
    command.stdout.write(plaintext)
