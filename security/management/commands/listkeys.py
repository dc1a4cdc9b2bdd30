"""List keys by prefix and state; secrets are never stored, so never shown."""

from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand

from security.models import ApiKey

from .issuekey import find_client

COLUMNS = ("client", "prefix", "state", "created", "expires", "grace until", "last used", "from")


class Command(BaseCommand):
    help = "List API keys (all clients, or one by name): prefix, state, dates, last use."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("client", nargs="?", help="client name")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = ApiKey.objects.select_related("client").order_by("client__name", "created")
        if options["client"]:
            keys = keys.filter(client=find_client(options["client"]))
        self.stdout.write("\t".join(COLUMNS))
        for key in keys:
            self.stdout.write("\t".join(_row(key)))


def _row(key: ApiKey) -> tuple[str, ...]:
    return (
        key.client.name,
        key.prefix,
        key.state,
        _date(key.created),
        _date(key.expires_at),
        _date(key.grace_until),
        _date(key.last_used_at),
        key.last_used_ip or "-",
    )


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"
