"""The trust material of each active community, parsed once and cached in-process.

Anchors and CRLs change rarely but are needed on every request, so a process serves from its
snapshot for settings.SECURITY_CACHE_SECONDS; a change in the database takes effect after that.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from django.conf import settings

from .models import RevocationList, TrustAnchor, TrustCommunity
from .trust.certificates import CertificateError, fingerprint, load_pem_certificate
from .trust.crls import load_crl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Revocation:
    """An anchor's CRL as loaded: None when missing or not verifiable."""

    crl: x509.CertificateRevocationList | None
    next_update: datetime | None

    def is_current(self, now: datetime) -> bool:
        return self.crl is not None and self.next_update is not None and now < self.next_update


@dataclass(frozen=True)
class Anchor:
    """One CA certificate of a community, with the CRL it issues."""

    kind: str
    certificate: x509.Certificate
    fingerprint: str
    revocation: Revocation


@dataclass(frozen=True)
class CommunityTrust:
    """A community's roots (the verifier's store) and intermediates that may complete a chain."""

    community: TrustCommunity
    anchors: dict[str, Anchor] = field(default_factory=dict)  # by fingerprint

    @property
    def roots(self) -> list[x509.Certificate]:
        return [a.certificate for a in self.anchors.values() if a.kind == TrustAnchor.ROOT]

    @property
    def intermediates(self) -> list[x509.Certificate]:
        return [a.certificate for a in self.anchors.values() if a.kind == TrustAnchor.INTERMEDIATE]

    def anchor_for(self, cert: x509.Certificate) -> Anchor | None:
        return self.anchors.get(fingerprint(cert))


# Verified certificates remembered per snapshot; more distinct certificates than this (a flood of
# throwaway ones) start the memo afresh rather than grow without bound.
VERIFIED_LIMIT = 10_000


@dataclass(frozen=True)
class TrustSnapshot:
    communities: tuple[CommunityTrust, ...]
    loaded_at: float
    # Chains this snapshot's material verified, by certificate fingerprints: dies with the
    # snapshot, so a changed anchor or CRL is never judged by a verdict reached before it.
    verified: dict = field(default_factory=dict, compare=False)

    def remember(self, key: tuple, value: object) -> None:
        if len(self.verified) >= VERIFIED_LIMIT:
            self.verified.clear()
        self.verified[key] = value


_lock = threading.Lock()
_snapshot: TrustSnapshot | None = None


def current() -> TrustSnapshot:
    """The cached snapshot, reloaded from the database once it is older than the cache period."""
    global _snapshot
    with _lock:
        snapshot = _snapshot
        max_age = settings.SECURITY_CACHE_SECONDS
        if snapshot is None or time.monotonic() - snapshot.loaded_at >= max_age:
            snapshot = _snapshot = load()
        return snapshot


def invalidate() -> None:
    """Forget the snapshot (after this process changed trust material, and in tests)."""
    global _snapshot
    with _lock:
        _snapshot = None


def load() -> TrustSnapshot:
    anchors = TrustAnchor.objects.filter(community__active=True).select_related("community")
    crls = {r.issuer_id: r for r in RevocationList.objects.filter(issuer__in=anchors)}
    communities: dict[int, CommunityTrust] = {}
    for row in anchors.order_by("community_id", "id"):
        trust = communities.setdefault(row.community_id, CommunityTrust(row.community))
        anchor = _load_anchor(row, crls.get(row.id))
        if anchor is not None:
            trust.anchors[anchor.fingerprint] = anchor
    return TrustSnapshot(tuple(communities.values()), time.monotonic())


def _load_anchor(row: TrustAnchor, crl_row: RevocationList | None) -> Anchor | None:
    # A row that does not parse is not trusted; the others stay usable.
    try:
        cert = load_pem_certificate(row.certificate_pem)
    except CertificateError:
        log.error("trust anchor %s does not parse; ignored", row.pk)
        return None
    if fingerprint(cert) != row.fingerprint_sha256:
        log.error("trust anchor %s fingerprint does not match its certificate; ignored", row.pk)
        return None
    return Anchor(row.kind, cert, fingerprint(cert), _load_revocation(cert, crl_row))


def _load_revocation(issuer: x509.Certificate, row: RevocationList | None) -> Revocation:
    crl = load_crl(row, issuer)
    return Revocation(crl, crl.next_update_utc if crl is not None else None)
