"""Rotate the built-in authorization server's token signing key."""

from typing import Any

from django.core.management.base import BaseCommand

from security.keys import command_actor
from security.oauth import signing


class Command(BaseCommand):
    help = (
        "Make a new token signing key; the previous one stops signing and stays published in "
        "the JWKS until every token it signed has expired."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        new = signing.rotate(actor=command_actor())
        overlap = int(signing.overlap().total_seconds())
        self.stdout.write(f"New signing key {new.kid}; the previous one published {overlap}s more.")
