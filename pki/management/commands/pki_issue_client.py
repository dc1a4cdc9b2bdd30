"""Issue a client certificate from a community CA: organisation-level or for a Direct address."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pki import PkiError, issue, policy
from pki.authority import LeafFiles, issue_leaf
from pki.keys import KEY_TYPES
from pki.layout import CaDirectory, serial_hex
from pki.registration import register_client
from security.clients import ClientError, normalise
from security.keys import command_actor
from security.models import CertificateIdentity

# What issue_leaf calls to make the certificate: (issuer, public key, serial) -> certificate.
Build = Callable[[issue.Issuer, CertificatePublicKeyTypes, int], x509.Certificate]


class Command(BaseCommand):
    help = (
        "Issue a client certificate (clientAuth) for a system's FQDN and organisation, or for a "
        "Direct address (clientAuth + emailProtection); optionally register the API client."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", required=True, type=Path, help="the issuing CA's directory")
        parser.add_argument("--out", required=True, type=Path, help="directory for key and cert")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--fqdn", metavar="NAME", help="the system's host name (SAN DNS)")
        who.add_argument(
            "--direct-address", metavar="ADDR", help="e.g. dr.smith@direct.example.org"
        )
        parser.add_argument("--organization", default="", metavar="ORG")
        parser.add_argument(
            "--software-uri",
            metavar="URI",
            help="with --fqdn: the client software's https URI as a SAN URI, for UDAP registration",
        )
        parser.add_argument("--days", type=int, default=policy.LEAF_DAYS)
        parser.add_argument("--key-type", choices=KEY_TYPES, help="default: the CA's")
        parser.add_argument("--register-client", metavar="NAME", help="create/update this client")
        parser.add_argument("--scopes", help="allowed scopes of the registered client")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["fqdn"] and not options["organization"]:
            raise CommandError("--fqdn needs --organization (the subject's O)")
        if options["software_uri"] and not options["fqdn"]:
            raise CommandError("--software-uri goes with --fqdn")
        if options["scopes"] is not None and not options["register_client"]:
            raise CommandError("--scopes only applies with --register-client")
        ca = CaDirectory(options["ca"])
        try:
            ca.require_exists()
            build, basename, identity = _what_to_issue(options)
            files = issue_leaf(ca, build, options["out"], basename, options["key_type"] or "")
            self._report(files)
            if options["register_client"]:
                self._register(options, files, identity, ca)
        except (PkiError, ClientError) as error:
            raise CommandError(str(error)) from error

    def _report(self, files: LeafFiles) -> None:
        self.stdout.write(
            f"issued client certificate {serial_hex(files.certificate.serial_number)}"
        )
        self.stdout.write(f"  certificate {files.cert_file}\n  chain {files.chain_file}")
        self.stdout.write(f"  private key {files.key_file} (mode 0600)")

    def _register(
        self, options: dict[str, Any], files: LeafFiles, identity: str, ca: CaDirectory
    ) -> None:
        registration = register_client(
            options["register_client"],
            files.certificate,
            files.cert_file.read_text(),
            identity,
            organization=options["organization"],
            scopes=options["scopes"],
            ca=ca,
            actor=command_actor(),
        )
        verb = "created" if registration.created else "updated"
        self.stdout.write(f"{verb} client {registration.client.name}")
        for added in registration.identities:
            self.stdout.write(f"  identity {added}")


def _what_to_issue(options: dict[str, Any]) -> tuple[Build, str, str]:
    """The certificate builder, the output file name and the identity the app will match."""
    days, organization = options["days"], options["organization"]
    if options["fqdn"]:
        fqdn = normalise(CertificateIdentity.DNS, options["fqdn"])
        uris = (options["software_uri"],) if options["software_uri"] else ()
        build: Build = partial(
            _organization, fqdn=fqdn, organization=organization, days=days, uris=uris
        )
        return build, fqdn, CertificateIdentity.DNS
    address = options["direct_address"].strip()
    issue.require_direct_address(address)
    build = partial(_direct, address=address, organization=organization, days=days)
    # The app matches SAN DNS, subject or fingerprint, never an rfc822Name: pin this certificate.
    return build, address, CertificateIdentity.FINGERPRINT


def _organization(
    signer: issue.Issuer,
    public_key: CertificatePublicKeyTypes,
    serial: int,
    *,
    fqdn: str,
    organization: str,
    days: int,
    uris: tuple[str, ...],
) -> x509.Certificate:
    return issue.organization_client(signer, fqdn, organization, public_key, days, serial, uris)


def _direct(
    signer: issue.Issuer,
    public_key: CertificatePublicKeyTypes,
    serial: int,
    *,
    address: str,
    organization: str,
    days: int,
) -> x509.Certificate:
    return issue.direct_address_client(signer, address, organization, public_key, days, serial)
