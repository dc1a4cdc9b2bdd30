"""Refreshing CRLs: where each anchor's CRL is published, fetching it, and handing it to the
trust core (security/trust/crls.py), which checks and stores it.

`refresh_all` is what the scheduled `refreshcrls` command runs.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from django.conf import settings
from django.utils import timezone

from .models import TrustAnchor, TrustCommunity
from .trust.chains import issued_by
from .trust.crls import (
    CrlError,
    anchor_certificate,
    check_crl,
    has_current_crl,
    parse_crl,
    record_failure,
    store_crl,
)

# CRLs of busy CAs run to megabytes; anything far larger is not a CRL we want in memory.
MAX_CRL_BYTES = 32 * 1024 * 1024


@dataclass
class RefreshResult:
    anchor: TrustAnchor
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def fetch(source: str, timeout: float) -> bytes:
    """The bytes at `source`: an http(s) URL, a file:// URL or a local path."""
    if source.startswith(("http://", "https://")):
        return _fetch_url(source, timeout)
    path = source.removeprefix("file://")
    if "://" in path:
        raise CrlError("unsupported CRL source scheme")
    try:
        with Path(path).open("rb") as file:
            return _read_capped(file)
    except OSError as error:
        raise CrlError(f"cannot read CRL file: {error.strerror}") from error


def _fetch_url(url: str, timeout: float) -> bytes:
    # Only http(s) reaches urlopen, so no file:, ftp: or custom handler can be smuggled in.
    request = urllib.request.Request(url, headers={"User-Agent": "fhir-directory-refreshcrls"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return _read_capped(response)
    except OSError as error:  # URLError, HTTPError and timeouts are all OSErrors
        raise CrlError(f"cannot fetch CRL: {getattr(error, 'reason', error)}") from error


def _read_capped(stream: BinaryIO) -> bytes:
    data = stream.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise CrlError("CRL is too large")
    return data


def crl_sources(anchor: TrustAnchor) -> list[str]:
    """Where `anchor`'s CRL is: its crl_source, else the distribution points named in the
    community's certificates that this anchor issued (a CA's CRL location is published in the
    certificates it signs, not in its own)."""
    if anchor.crl_source:
        return [anchor.crl_source]
    issuer = anchor_certificate(anchor)
    sources: list[str] = []
    for other in anchor.community.anchors.exclude(pk=anchor.pk):
        cert = anchor_certificate(other)
        if issued_by(cert, issuer):
            sources.extend(u for u in distribution_points(cert) if u not in sources)
    return sources


def distribution_points(cert: x509.Certificate) -> list[str]:
    """The http(s) URLs of the CRL distribution points in `cert`."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
        and name.value.startswith(("http://", "https://"))
    ]


def refresh_anchor(anchor: TrustAnchor, now: datetime | None = None) -> RefreshResult:
    """Fetch, check and store the CRL `anchor` issues; on failure record why and keep the old."""
    now = now or timezone.now()
    try:
        store_crl(anchor, _fetch_checked(anchor), now)
    except CrlError as error:
        record_failure(anchor, str(error), now)
        return RefreshResult(anchor, str(error))
    return RefreshResult(anchor)


def _fetch_checked(anchor: TrustAnchor) -> x509.CertificateRevocationList:
    sources = crl_sources(anchor)
    if not sources:
        raise CrlError("no CRL source configured or published")
    issuer = anchor_certificate(anchor)
    errors = []
    for source in sources:
        try:
            crl = parse_crl(fetch(source, settings.SECURITY_CRL_FETCH_TIMEOUT))
            check_crl(crl, issuer)
        except CrlError as error:
            errors.append(str(error))
            continue
        return crl
    raise CrlError("; ".join(errors))


def stale_anchors(now: datetime | None = None) -> list[TrustAnchor]:
    """Anchors of active communities whose CRL is missing or past its nextUpdate."""
    now = now or timezone.now()
    anchors = TrustAnchor.objects.filter(community__active=True).select_related("crl", "community")
    return [a for a in anchors if not has_current_crl(a, now)]


def refresh_all(community: TrustCommunity | None = None) -> list[RefreshResult]:
    """Refresh every anchor that has (or publishes) a CRL source, in active communities."""
    anchors = TrustAnchor.objects.filter(community__active=True).select_related("community")
    if community is not None:
        anchors = anchors.filter(community=community)
    return [refresh_anchor(anchor) for anchor in anchors.order_by("community_id", "id")]
