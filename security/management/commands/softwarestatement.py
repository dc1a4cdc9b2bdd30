"""Print a UDAP registration request body: a software statement signed with a client's key."""

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from security.oauth import client_tools, config


class Command(BaseCommand):
    help = "Sign a UDAP software statement with a community certificate's key; print the body."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--cert", required=True, help="certificate chain PEM, leaf first")
        parser.add_argument("--key", required=True, help="the certificate's private key (PEM)")
        parser.add_argument("--uri", required=True, help="a SAN URI of the certificate")
        parser.add_argument("--name", required=True, help="client_name")
        parser.add_argument("--scope", default="system/*.rs")
        parser.add_argument("--registration-url", default="", help="default: OAUTH_SERVER_URL")

    def handle(
        self,
        *args: Any,
        cert: str,
        key: str,
        uri: str,
        name: str,
        scope: str,
        registration_url: str,
        **options: Any,
    ) -> None:
        url = registration_url or config.registration_endpoint()
        statement = client_tools.software_statement(cert, key, uri, name, url, scope)
        self.stdout.write(json.dumps({"software_statement": statement, "udap": "1"}))
