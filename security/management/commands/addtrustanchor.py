"""Register a community's root or intermediate CA certificate as trust material."""

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from security import truststore
from security.crl import CrlError, anchor_certificate
from security.models import TrustAnchor, TrustCommunity
from security.truststore import fingerprint

MAX_CHAIN_DEPTH = 8


class Command(BaseCommand):
    help = "Add a CA certificate (root or intermediate) to a trust community, creating it if new."

    def add_arguments(self, parser):
        parser.add_argument("--community", required=True, metavar="SLUG")
        parser.add_argument("--name", help="community name, when the community is new")
        parser.add_argument("--certificate", required=True, metavar="PEMFILE")
        parser.add_argument("--kind", choices=[k for k, _ in TrustAnchor.KINDS], default="root")
        parser.add_argument("--crl", default="", metavar="SOURCE", help="CRL file path or URL")

    def handle(self, *args, **options):
        cert = read_certificate(options["certificate"])
        require_ca(cert)
        with transaction.atomic():
            community, _ = TrustCommunity.objects.get_or_create(
                slug=options["community"],
                defaults={"name": options["name"] or options["community"]},
            )
            existing = TrustAnchor.objects.filter(fingerprint_sha256=fingerprint(cert)).first()
            if existing is not None:
                self._update_existing(existing, community, options["crl"])
                return
            if options["kind"] == TrustAnchor.ROOT:
                require_self_signed(cert)
            else:
                require_chains_to_root(cert, community)
            anchor = TrustAnchor.objects.create(
                community=community,
                kind=options["kind"],
                certificate_pem=cert.public_bytes(Encoding.PEM).decode("ascii"),
                subject=cert.subject.rfc4514_string(),
                fingerprint_sha256=fingerprint(cert),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                crl_source=options["crl"],
            )
        truststore.invalidate()
        self.stdout.write(f"added {anchor.kind} {anchor.subject} ({anchor.fingerprint_sha256})")
        if not anchor.crl_source:
            self.stdout.write("no --crl: refreshcrls will look for a published distribution point")

    def _update_existing(self, anchor, community, crl_source):
        # Re-running with the same certificate is how an operator changes its CRL source.
        if anchor.community_id != community.pk:
            raise CommandError(f"certificate already registered in {anchor.community.slug!r}")
        if crl_source and crl_source != anchor.crl_source:
            anchor.crl_source = crl_source
            anchor.save(update_fields=["crl_source"])
            truststore.invalidate()
            self.stdout.write(f"updated CRL source of {anchor.subject}")
        else:
            self.stdout.write(f"already registered: {anchor.subject}")


def read_certificate(path: str) -> x509.Certificate:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from error
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise CommandError(f"{path} holds no PEM certificate") from error
    if len(certs) != 1:
        raise CommandError(f"{path} holds {len(certs)} certificates; give exactly one")
    return certs[0]


def require_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as error:
        raise CommandError("not a CA certificate (no basicConstraints)") from error
    if not constraints.ca:
        raise CommandError("not a CA certificate (basicConstraints CA is false)")


def require_self_signed(cert: x509.Certificate) -> None:
    if not _issued_by(cert, cert):
        raise CommandError("a root must be self-signed; use --kind intermediate")


def require_chains_to_root(cert: x509.Certificate, community: TrustCommunity) -> None:
    """An intermediate must be signed, directly or through registered intermediates, by a root
    of the same community."""
    anchors = [(a.kind, _certificate(a)) for a in community.anchors.all()]
    roots = [c for kind, c in anchors if kind == TrustAnchor.ROOT]
    intermediates = [c for kind, c in anchors if kind == TrustAnchor.INTERMEDIATE]
    if not roots:
        raise CommandError(f"community {community.slug!r} has no root yet; add it first")

    def reaches_root(current, depth):
        if any(_issued_by(current, root) for root in roots):
            return True
        return depth < MAX_CHAIN_DEPTH and any(
            c != current and _issued_by(current, c) and reaches_root(c, depth + 1)
            for c in intermediates
        )

    if not reaches_root(cert, 0):
        raise CommandError(f"intermediate does not chain to a root of {community.slug!r}")


def _certificate(anchor: TrustAnchor) -> x509.Certificate:
    try:
        return anchor_certificate(anchor)
    except CrlError as error:
        raise CommandError(f"stored anchor {anchor.pk} does not parse") from error


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # any failure means "not issued by"
        return False
    return True
