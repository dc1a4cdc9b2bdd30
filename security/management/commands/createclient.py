"""Register an API client and the certificate identities that recognise it."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from security.clients import ClientError, add_identity, create_client
from security.keys import command_actor
from security.models import ApiClient, CertificateIdentity, TrustCommunity


class Command(BaseCommand):
    help = "Register an API client with its certificate identities (no key: use issuekey)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--organization", default="")
        parser.add_argument("--community", metavar="SLUG", help="trust community slug")
        parser.add_argument("--scopes", default="", help="space-separated allowed scopes")
        parser.add_argument("--dns", nargs="+", default=[], metavar="FQDN")
        parser.add_argument("--subject", metavar="DN", help="RFC 4514 subject DN")
        parser.add_argument("--fingerprint", metavar="HEX", help="SHA-256 of the certificate")
        parser.add_argument("--certificate", metavar="PEMFILE", help="read identities from a PEM")
        parser.add_argument(
            "--certificate-identity",
            choices=[kind for kind, _ in CertificateIdentity.KINDS],
            nargs="+",
            default=[CertificateIdentity.FINGERPRINT],
            help="what to take from --certificate (default: fingerprint, the exact pin)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = command_actor()
        community = _community(options["community"])
        try:
            with transaction.atomic():
                client = create_client(
                    options["name"],
                    options["organization"],
                    community,
                    options["scopes"],
                    actor=actor,
                )
                identities = self._add_identities(client, options, actor)
        except ClientError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created client {client.name} (id {client.pk})")
        for identity in identities:
            self.stdout.write(f"  identity {identity}")

    def _add_identities(
        self, client: ApiClient, options: dict[str, Any], actor: str
    ) -> list[CertificateIdentity]:
        typed = [(CertificateIdentity.DNS, name) for name in options["dns"]]
        if options["subject"]:
            typed.append((CertificateIdentity.SUBJECT, options["subject"]))
        if options["fingerprint"]:
            typed.append((CertificateIdentity.FINGERPRINT, options["fingerprint"]))
        identities = []
        for kind, value in typed:
            identities += add_identity(client, kind, value=value, actor=actor)
        if options["certificate"]:
            pem = _read_pem(options["certificate"])
            for kind in options["certificate_identity"]:
                identities += add_identity(client, kind, certificate_pem=pem, actor=actor)
        return identities


def _community(slug: str) -> TrustCommunity | None:
    if not slug:
        return None
    try:
        return TrustCommunity.objects.get(slug=slug)
    except TrustCommunity.DoesNotExist as exc:
        raise CommandError(f"no trust community with slug {slug!r}") from exc


def _read_pem(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read certificate file {path}: {exc}") from exc
