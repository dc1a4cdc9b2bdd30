"""Register a community's root or intermediate CA certificate as trust material."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from django.core.management.base import BaseCommand, CommandError, CommandParser

from security.anchors import AnchorError, Registration, register_anchor
from security.keys import command_actor
from security.models import TrustAnchor
from security.trust.certificates import CertificateError, load_pem_certificates


class Command(BaseCommand):
    help = "Add a CA certificate (root or intermediate) to a trust community, creating it if new."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--community", required=True, metavar="SLUG")
        parser.add_argument("--name", help="community name, when the community is new")
        parser.add_argument("--certificate", required=True, metavar="PEMFILE")
        parser.add_argument("--kind", choices=[k for k, _ in TrustAnchor.KINDS], default="root")
        parser.add_argument("--crl", default="", metavar="SOURCE", help="CRL file path or URL")

    def handle(self, *args: Any, **options: Any) -> None:
        cert = read_certificate(options["certificate"])
        try:
            registration = register_anchor(
                cert,
                options["community"],
                kind=options["kind"],
                crl_source=options["crl"],
                community_name=options["name"] or "",
                actor=command_actor(),
            )
        except AnchorError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(describe(registration))
        if registration.outcome == "added" and not registration.anchor.crl_source:
            self.stdout.write("no --crl: refreshcrls will look for a published distribution point")


def describe(registration: Registration) -> str:
    """One line saying what registering did."""
    anchor = registration.anchor
    if registration.outcome == "added":
        return f"added {anchor.kind} {anchor.subject} ({anchor.fingerprint_sha256})"
    if registration.outcome == "crl-source-updated":
        return f"updated CRL source of {anchor.subject}"
    return f"already registered: {anchor.subject}"


def read_certificate(path: str) -> x509.Certificate:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from error
    try:
        certs = load_pem_certificates(data)
    except CertificateError as error:
        raise CommandError(f"{path} holds no PEM certificate") from error
    if len(certs) != 1:
        raise CommandError(f"{path} holds {len(certs)} certificates; give exactly one")
    return certs[0]
