"""Print a private_key_jwt client assertion for the built-in token endpoint."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from security.oauth import client_tools, config


class Command(BaseCommand):
    help = "Sign a client assertion (valid 4 minutes, fresh jti) with a client's private key."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--key", required=True, help="the client's private key (PEM)")
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--kid", default="", help="key id in the client's registered JWKS")
        parser.add_argument("--token-url", default="", help="default: from OAUTH_SERVER_URL")

    def handle(
        self,
        *args: Any,
        key: str,
        client_id: str,
        kid: str,
        token_url: str | None,
        **options: Any,
    ) -> None:
        url = token_url or config.token_endpoint()
        self.stdout.write(client_tools.client_assertion(key, client_id, url, kid))
