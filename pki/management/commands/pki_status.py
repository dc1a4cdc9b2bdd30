"""What a community CA has issued: age, expiry, revocation, and what needs attention."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pki import PkiError
from pki.layout import CaDirectory, serial_hex
from pki.policy import EXPIRY_WARNING, CertificateStatus, certificate_status
from pki.revocation import crl_number, load_state
from security.trust.crls import CrlError, parse_crl


class Command(BaseCommand):
    help = (
        "List a CA's issued certificates with warnings (over 12 months old, expiring in 90 days)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        ca = CaDirectory(options["ca"])
        now = dt.datetime.now(dt.UTC)
        try:
            ca.require_exists()
            revoked = {r.serial for r in load_state(ca).revoked}
            statuses = [
                certificate_status(cert, cert.serial_number in revoked, now) for cert in ca.issued()
            ]
        except PkiError as error:
            raise CommandError(str(error)) from error
        self._ca_line(ca, now)
        for status in statuses:
            self._cert_line(status)
        warned = sum(1 for status in statuses if status.warnings)
        self.stdout.write(
            f"{len(statuses)} issued, {len(revoked)} revoked, {warned} need attention"
        )

    def _ca_line(self, ca: CaDirectory, now: dt.datetime) -> None:
        cert = ca.certificate()
        self.stdout.write(
            f"CA {cert.subject.rfc4514_string()}, expires {cert.not_valid_after_utc:%Y-%m-%d}"
        )
        if cert.not_valid_after_utc - now <= EXPIRY_WARNING:
            self.stdout.write("  WARNING: the CA itself expires within 90 days")
        if not ca.crl_der_file.exists():
            self.stdout.write("  WARNING: no CRL published")
            return
        try:
            crl = parse_crl(ca.crl_der_file.read_bytes())
        except CrlError as error:
            raise CommandError(f"{ca.crl_der_file}: {error}") from error
        if crl.next_update_utc is None:  # never so for a CRL this CA published
            raise CommandError(f"{ca.crl_der_file}: the CRL has no nextUpdate")
        self.stdout.write(
            f"  CRL {crl_number(crl)}, next update {crl.next_update_utc:%Y-%m-%d %H:%M} UTC"
        )
        if crl.next_update_utc <= now + dt.timedelta(days=1):
            self.stdout.write("  WARNING: the CRL expires within a day: run pki_publish_crl")

    def _cert_line(self, status: CertificateStatus) -> None:
        cert = status.certificate
        state = "REVOKED" if status.revoked else "valid"
        self.stdout.write(
            f"{serial_hex(cert.serial_number)}  {cert.subject.rfc4514_string()}  "
            f"age {status.age.days}d  expires {cert.not_valid_after_utc:%Y-%m-%d}  {state}"
        )
        for warning in status.warnings:
            self.stdout.write(f"  WARNING: {warning}")
