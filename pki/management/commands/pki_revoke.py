"""Revoke a certificate a community CA issued (then publish the CRL with pki_publish_crl)."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pki import PkiError
from pki.layout import CaDirectory, parse_serial, serial_hex
from pki.revocation import REASONS, revoke, serial_of_issued
from security.trust.certificates import CertificateError, load_pem_certificate


class Command(BaseCommand):
    help = "Record a certificate as revoked by its CA; it is refused once the new CRL is loaded."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--ca", required=True, type=Path)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--serial", metavar="HEX")
        which.add_argument("--cert", type=Path, metavar="PEMFILE")
        parser.add_argument("--reason", choices=list(REASONS), default="unspecified")

    def handle(self, *args: Any, **options: Any) -> None:
        ca = CaDirectory(options["ca"])
        try:
            ca.require_exists()
            serial = _serial(ca, options)
            entry, new = revoke(ca, serial, options["reason"])
        except PkiError as error:
            raise CommandError(str(error)) from error
        if new:
            self.stdout.write(f"revoked {serial_hex(serial)} ({entry.reason})")
        else:
            self.stdout.write(f"already revoked {serial_hex(serial)} on {entry.date:%Y-%m-%d}")
        self.stdout.write(f"now publish: manage.py pki_publish_crl --ca {ca.path}")


def _serial(ca: CaDirectory, options: dict[str, Any]) -> int:
    if options["serial"]:
        return parse_serial(options["serial"])
    try:
        cert = load_pem_certificate(options["cert"].read_bytes())
    except (OSError, CertificateError) as error:
        raise PkiError(f"cannot read a PEM certificate from {options['cert']}") from error
    return serial_of_issued(ca, cert)
