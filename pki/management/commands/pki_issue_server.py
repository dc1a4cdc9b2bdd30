"""Issue a TLS server certificate from a community CA."""

from argparse import ArgumentParser
from functools import partial
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from django.core.management.base import BaseCommand, CommandError

from pki import PkiError, issue, policy
from pki.authority import issue_leaf
from pki.keys import KEY_TYPES
from pki.layout import CaDirectory, serial_hex


class Command(BaseCommand):
    help = "Issue a server certificate (serverAuth, SAN DNS names and IPs) and its key."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--ca", required=True, type=Path, help="the issuing CA's directory")
        parser.add_argument("--dns", action="append", required=True, metavar="NAME")
        parser.add_argument("--ip", action="append", default=[], metavar="IP")
        parser.add_argument("--out", required=True, type=Path, help="directory for key and cert")
        parser.add_argument("--days", type=int, default=policy.LEAF_DAYS)
        parser.add_argument("--key-type", choices=KEY_TYPES, help="default: the CA's")

    def handle(self, *args: Any, **options: Any) -> None:
        ca = CaDirectory(options["ca"])
        dns = tuple(name.lower().rstrip(".") for name in options["dns"])
        try:
            ca.require_exists()
            subject = issue.Subject(
                common_name=dns[0], organization=ca.info().name, dns=dns, ips=tuple(options["ip"])
            )
            build = partial(_build, subject=subject, days=options["days"])
            files = issue_leaf(ca, build, options["out"], dns[0], options["key_type"] or "")
        except (PkiError, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"issued server certificate {serial_hex(files.certificate.serial_number)}"
        )
        self.stdout.write(f"  certificate {files.cert_file}\n  chain {files.chain_file}")
        self.stdout.write(f"  private key {files.key_file} (mode 0600)")


def _build(
    signer: issue.Issuer,
    public_key: CertificatePublicKeyTypes,
    serial: int,
    *,
    subject: issue.Subject,
    days: int,
) -> x509.Certificate:
    return issue.server_certificate(signer, subject, public_key, days, serial)
