"""Registering a community's CA certificates as trust anchors: the checks and the rows.

Shared by `addtrustanchor` and the community PKI commands, so both refuse the same things.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import transaction

from . import truststore
from .crl import CrlError, anchor_certificate
from .models import TrustAnchor, TrustCommunity
from .truststore import fingerprint

MAX_CHAIN_DEPTH = 8


class AnchorError(ValueError):
    """The certificate cannot be registered as asked; the message says why."""


@dataclass(frozen=True)
class Registration:
    anchor: TrustAnchor
    outcome: str  # "added", "crl-source-updated" or "unchanged"


def register_anchor(
    cert: x509.Certificate,
    community_slug: str,
    kind: str = TrustAnchor.ROOT,
    crl_source: str = "",
    community_name: str = "",
) -> Registration:
    """Add `cert` to the community (created if new); re-registering may change its CRL source."""
    require_ca(cert)
    with transaction.atomic():
        community, _ = TrustCommunity.objects.get_or_create(
            slug=community_slug, defaults={"name": community_name or community_slug}
        )
        existing = TrustAnchor.objects.filter(fingerprint_sha256=fingerprint(cert)).first()
        if existing is not None:
            registration = _update_existing(existing, community, crl_source)
        else:
            registration = Registration(_create(cert, community, kind, crl_source), "added")
    if registration.outcome != "unchanged":
        truststore.invalidate()
    return registration


def _create(
    cert: x509.Certificate, community: TrustCommunity, kind: str, crl_source: str
) -> TrustAnchor:
    if kind == TrustAnchor.ROOT:
        require_self_signed(cert)
    else:
        require_chains_to_root(cert, community)
    return TrustAnchor.objects.create(
        community=community,
        kind=kind,
        certificate_pem=cert.public_bytes(Encoding.PEM).decode("ascii"),
        subject=cert.subject.rfc4514_string(),
        fingerprint_sha256=fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        crl_source=crl_source,
    )


def _update_existing(
    anchor: TrustAnchor, community: TrustCommunity, crl_source: str
) -> Registration:
    # Re-running with the same certificate is how an operator changes its CRL source.
    if anchor.community_id != community.pk:
        raise AnchorError(f"certificate already registered in {anchor.community.slug!r}")
    if crl_source and crl_source != anchor.crl_source:
        anchor.crl_source = crl_source
        anchor.save(update_fields=["crl_source"])
        return Registration(anchor, "crl-source-updated")
    return Registration(anchor, "unchanged")


def require_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as error:
        raise AnchorError("not a CA certificate (no basicConstraints)") from error
    if not constraints.ca:
        raise AnchorError("not a CA certificate (basicConstraints CA is false)")


def require_self_signed(cert: x509.Certificate) -> None:
    if not _issued_by(cert, cert):
        raise AnchorError("a root must be self-signed; use --kind intermediate")


def require_chains_to_root(cert: x509.Certificate, community: TrustCommunity) -> None:
    """An intermediate must be signed, directly or through registered intermediates, by a root
    of the same community."""
    anchors = [(a.kind, _certificate(a)) for a in community.anchors.all()]
    roots = [c for kind, c in anchors if kind == TrustAnchor.ROOT]
    intermediates = [c for kind, c in anchors if kind == TrustAnchor.INTERMEDIATE]
    if not roots:
        raise AnchorError(f"community {community.slug!r} has no root yet; add it first")

    def reaches_root(current: x509.Certificate, depth: int) -> bool:
        if any(_issued_by(current, root) for root in roots):
            return True
        return depth < MAX_CHAIN_DEPTH and any(
            c != current and _issued_by(current, c) and reaches_root(c, depth + 1)
            for c in intermediates
        )

    if not reaches_root(cert, 0):
        raise AnchorError(f"intermediate does not chain to a root of {community.slug!r}")


def _certificate(anchor: TrustAnchor) -> x509.Certificate:
    try:
        return anchor_certificate(anchor)
    except CrlError as error:
        raise AnchorError(f"stored anchor {anchor.pk} does not parse") from error


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # any failure means "not issued by"
        return False
    return True
