"""Stand up a trust community's own CA: a root and, optionally, an issuing intermediate."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pki import PkiError
from pki.authority import init_community
from pki.keys import KEY_TYPES
from pki.registration import crl_source, register_ca
from security.keys import command_actor


class Command(BaseCommand):
    help = (
        "Create a community root CA (10 years) and optionally an intermediate (5 years) under "
        "DIR, each with a first CRL; --register makes them trust anchors of the community."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dir", required=True, type=Path)
        parser.add_argument("--community", required=True, metavar="SLUG")
        parser.add_argument("--name", required=True, help="community name, used in CA subjects")
        parser.add_argument("--intermediate", action="store_true", help="also an issuing CA")
        parser.add_argument(
            "--crl-url",
            default="",
            metavar="BASE",
            help="base URL where CRLs will be published: <BASE>/<slug>-root.crl, -issuing.crl",
        )
        parser.add_argument("--key-type", choices=KEY_TYPES, default="ec")
        parser.add_argument("--register", action="store_true", help="add them as trust anchors")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            cas = init_community(
                options["dir"],
                options["community"],
                options["name"],
                intermediate=options["intermediate"],
                crl_url=options["crl_url"],
                key_type=options["key_type"],
            )
            for ca in cas:
                self.stdout.write(f"created {ca.info().kind} CA in {ca.path}")
                if options["register"]:
                    registration = register_ca(ca, actor=command_actor())
                    self.stdout.write(
                        f"  registered ({registration.outcome}), CRL source {crl_source(ca)}"
                    )
        except PkiError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"issue from {cas[-1].path}; keep every ca.key.pem offline if you can")
