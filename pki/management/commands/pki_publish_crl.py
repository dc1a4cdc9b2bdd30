"""Sign and publish a community CA's CRL; store it on this server too when the CA is registered."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from cryptography import x509
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from pki import PkiError
from pki.layout import CaDirectory
from pki.registration import registered_anchor, store_crl
from pki.revocation import DEFAULT_CRL_DAYS, crl_number, publish_crl


class Command(BaseCommand):
    help = (
        "Write a fresh signed CRL (crl.der, crl.pem) for the CA. If the CA is a trust anchor "
        "here, the CRL is stored at once; other servers pick it up with refreshcrls."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--ca", required=True, type=Path)
        parser.add_argument("--days", type=int, default=DEFAULT_CRL_DAYS, help="until nextUpdate")

    def handle(self, *args: Any, **options: Any) -> None:
        ca = CaDirectory(options["ca"])
        try:
            ca.require_exists()
            crl = publish_crl(ca, options["days"])
            self.stdout.write(
                f"published CRL {crl_number(crl)} with {len(crl)} revoked, next update "
                f"{crl.next_update_utc:%Y-%m-%d %H:%M} UTC: {ca.crl_der_file}, {ca.crl_pem_file}"
            )
            self._store_here(ca, crl)
        except PkiError as error:
            raise CommandError(str(error)) from error
        if ca.info().crl_url:
            self.stdout.write(f"now copy {ca.crl_der_file} to {ca.info().crl_url}")

    def _store_here(self, ca: CaDirectory, crl: x509.CertificateRevocationList) -> None:
        try:
            anchor = registered_anchor(ca)
        except DatabaseError:
            # An offline CA host may have no database: the files are what count there.
            self.stderr.write("no database here: servers load this CRL with refreshcrls")
            return
        if anchor is not None:
            store_crl(anchor, crl)
            self.stdout.write(f"stored for trust anchor {anchor.subject}")
