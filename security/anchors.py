"""Registering a community's CA certificates as trust anchors: the checks and the rows.

Shared by `addtrustanchor` and the community PKI commands, so both refuse the same things.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from django.db import transaction

from . import truststore
from .models import TrustAnchor, TrustCommunity
from .trust import chains
from .trust.certificates import CertificateError, fingerprint, load_pem_certificate, pem, subject


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


def _create(cert, community, kind, crl_source) -> TrustAnchor:
    check_anchor(cert, community, kind)
    return TrustAnchor.objects.create(
        community=community,
        kind=kind,
        certificate_pem=pem(cert),
        subject=subject(cert),
        fingerprint_sha256=fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        crl_source=crl_source,
    )


def _update_existing(anchor, community, crl_source) -> Registration:
    # Re-running with the same certificate is how an operator changes its CRL source.
    if anchor.community_id != community.pk:
        raise AnchorError(f"certificate already registered in {anchor.community.slug!r}")
    if crl_source and crl_source != anchor.crl_source:
        anchor.crl_source = crl_source
        anchor.save(update_fields=["crl_source"])
        return Registration(anchor, "crl-source-updated")
    return Registration(anchor, "unchanged")


def check_anchor(cert: x509.Certificate, community: TrustCommunity, kind: str) -> None:
    """What a new anchor must be: a CA, and a self-signed root or chained to a root."""
    require_ca(cert)
    if kind == TrustAnchor.ROOT:
        require_self_signed(cert)
    else:
        require_chains_to_root(cert, community)


def require_ca(cert: x509.Certificate) -> None:
    problem = chains.ca_problem(cert)
    if problem is not None:
        raise AnchorError(problem)


def require_self_signed(cert: x509.Certificate) -> None:
    if not chains.is_self_signed(cert):
        raise AnchorError("a root must be self-signed; use --kind intermediate")


def require_chains_to_root(cert: x509.Certificate, community: TrustCommunity) -> None:
    """An intermediate must be signed, directly or through registered intermediates, by a root
    of the same community."""
    anchors = [(a.kind, _certificate(a)) for a in community.anchors.all()]
    roots = [c for kind, c in anchors if kind == TrustAnchor.ROOT]
    intermediates = [c for kind, c in anchors if kind == TrustAnchor.INTERMEDIATE]
    if not roots:
        raise AnchorError(f"community {community.slug!r} has no root yet; add it first")
    if not chains.reaches_root(cert, roots, intermediates):
        raise AnchorError(f"intermediate does not chain to a root of {community.slug!r}")


def _certificate(anchor: TrustAnchor) -> x509.Certificate:
    try:
        return load_pem_certificate(anchor.certificate_pem)
    except CertificateError as error:
        raise AnchorError(f"stored anchor {anchor.pk} does not parse") from error
