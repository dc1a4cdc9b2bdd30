"""Certificate revocation lists: fetch, check against their issuing anchor, store.

`refresh_all` is what the scheduled `refreshcrls` command runs; `check_crl_issued_by` is also
used when the trust store loads a stored CRL.
"""

from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.utils import timezone

from .models import RevocationList, TrustAnchor, TrustCommunity

log = logging.getLogger(__name__)

# CRLs of busy CAs run to megabytes; anything far larger is not a CRL we want in memory.
MAX_CRL_BYTES = 32 * 1024 * 1024
PEM_MARKER = b"-----BEGIN X509 CRL-----"


class CrlError(Exception):
    """A CRL could not be fetched, read or trusted; the message is safe to store and show."""


@dataclass
class RefreshResult:
    anchor: TrustAnchor
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from DER or PEM bytes."""
    try:
        if PEM_MARKER in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as error:
        raise CrlError("not a DER or PEM CRL") from error


def check_crl_issued_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
    """Raise unless `issuer` issued and signed `crl` and the CRL says when it expires."""
    if crl.issuer != issuer.subject:
        raise CrlError("CRL issuer does not match the anchor's subject")
    try:
        # Key types a CRL cannot be signed with raise here and are refused below.
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except Exception as error:  # unsupported key or algorithm: not a CRL we can trust
        raise CrlError("CRL signature cannot be checked") from error
    if not signed:
        raise CrlError("CRL signature does not verify against the anchor's key")
    if crl.next_update_utc is None:
        raise CrlError("CRL has no nextUpdate")


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


def _read_capped(stream: IO[bytes]) -> bytes:
    data = stream.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise CrlError("CRL is too large")
    return data


def anchor_certificate(anchor: TrustAnchor) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(anchor.certificate_pem.encode("ascii"))
    except ValueError as error:
        raise CrlError("anchor certificate does not parse") from error


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
        if cert.issuer == issuer.subject and _issued_by(cert, issuer):
            sources.extend(u for u in distribution_points(cert) if u not in sources)
    return sources


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # any failure means "not issued by"
        return False
    return True


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
        crl = _fetch_checked(anchor)
        _store(anchor, crl, now)
    except CrlError as error:
        _record_failure(anchor, str(error), now)
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
            check_crl_issued_by(crl, issuer)
        except CrlError as error:
            errors.append(str(error))
            continue
        return crl
    raise CrlError("; ".join(errors))


def _store(anchor: TrustAnchor, crl: x509.CertificateRevocationList, now: datetime) -> None:
    stored = RevocationList.objects.filter(issuer=anchor).first()
    # A replayed older CRL could un-revoke a certificate: never go back in time.
    if stored and stored.this_update and crl.last_update_utc < stored.this_update:
        raise CrlError("CRL is older than the one already stored")
    RevocationList.objects.update_or_create(
        issuer=anchor,
        defaults={
            "crl_der": crl.public_bytes(Encoding.DER),
            "this_update": crl.last_update_utc,
            "next_update": crl.next_update_utc,
            "fetched_at": now,
            "last_attempt_at": now,
            "last_error": "",
        },
    )


def _record_failure(anchor: TrustAnchor, error: str, now: datetime) -> None:
    log.warning("CRL refresh failed for anchor %s (%s): %s", anchor.pk, anchor.subject, error)
    RevocationList.objects.update_or_create(
        issuer=anchor, defaults={"last_attempt_at": now, "last_error": error[:500]}
    )


def stale_anchors(now: datetime | None = None) -> list[TrustAnchor]:
    """Anchors of active communities whose CRL is missing or past its nextUpdate."""
    now = now or timezone.now()
    anchors = TrustAnchor.objects.filter(community__active=True).select_related("crl", "community")
    return [a for a in anchors if not _has_current_crl(a, now)]


def _has_current_crl(anchor: TrustAnchor, now: datetime) -> bool:
    try:
        crl = anchor.crl
    except RevocationList.DoesNotExist:
        return False
    return bool(crl.crl_der) and crl.next_update is not None and now < crl.next_update


def refresh_all(community: TrustCommunity | None = None) -> list[RefreshResult]:
    """Refresh every anchor that has (or publishes) a CRL source, in active communities."""
    anchors = TrustAnchor.objects.filter(community__active=True).select_related("community")
    if community is not None:
        anchors = anchors.filter(community=community)
    return [refresh_anchor(anchor) for anchor in anchors.order_by("community_id", "id")]
