"""Verifying a client certificate ourselves, whatever the TLS terminator already decided.

The chain is checked with cryptography's X.509 verifier against each community's roots; our own
checks before it only name the precise reason a certificate fails, and revocation is checked by
CRL for every certificate below the root.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, VerificationError

from common.outage import UNAVAILABLE_ERRORS

from . import truststore
from .models import TrustCommunity
from .refusal import Refusal
from .truststore import CommunityTrust, fingerprint

log = logging.getLogger(__name__)

MAX_CHAIN_DEPTH = 8


@dataclass(frozen=True)
class VerifiedCertificate:
    community: TrustCommunity
    chain: list[x509.Certificate]  # leaf first, root last
    fingerprint: str  # of the leaf, SHA-256 lowercase hex

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


def verify(
    leaf: x509.Certificate, chain: list[x509.Certificate], now: datetime
) -> VerifiedCertificate:
    """Verify `leaf` (with proxy-sent `chain`) at `now`, or raise a Refusal naming why not.

    The signatures of a chain are checked once per trust snapshot (so at most every
    SECURITY_CACHE_SECONDS, and at once after this process changed trust material); the dates
    of every certificate on the path and its revocation are checked on every request.
    """
    try:
        snapshot = truststore.current()
    except UNAVAILABLE_ERRORS:
        raise  # the database, not the trust material: CheckMiddleware answers 503
    except Exception as error:
        log.exception("trust store could not be loaded")
        raise Refusal("crl-unavailable") from error
    key = (fingerprint(leaf), *(fingerprint(c) for c in chain))
    remembered = snapshot.verified.get(key)
    if remembered is not None and _path_valid_at(remembered[1].chain, now):
        trust, verified = remembered
        _check_revocation(trust, verified.chain, now)
        return verified
    # Refusals are not remembered: a fix (an anchor added, a fresh CRL) takes effect at once.
    trust, verified = _verify_chain(snapshot, leaf, chain, now)
    snapshot.remember(key, (trust, verified))
    return verified


def _path_valid_at(path: list[x509.Certificate], now: datetime) -> bool:
    """Whether every certificate of a remembered path is within its dates; if not, the full
    verification runs again and names the reason (or finds another path), as on a first sight."""
    return all(c.not_valid_before_utc <= now <= c.not_valid_after_utc for c in path)


def _verify_chain(
    snapshot: truststore.TrustSnapshot, leaf: x509.Certificate, chain: list, now: datetime
) -> tuple[CommunityTrust, VerifiedCertificate]:
    candidates = [t for t in snapshot.communities if _signed_into(t, leaf, chain)]
    if not candidates:
        raise Refusal("cert-untrusted")
    _check_validity(leaf, now)
    _check_client_usage(leaf)
    for trust in candidates:
        path = _library_verified_path(trust, leaf, chain, now)
        if path is not None:
            _check_revocation(trust, path, now)
            return trust, VerifiedCertificate(trust.community, path, fingerprint(leaf))
    raise Refusal("cert-untrusted")


def _signed_into(
    trust: CommunityTrust, leaf: x509.Certificate, chain: list[x509.Certificate]
) -> bool:
    """Whether signatures alone link `leaf` to one of `trust`'s roots (dates and usage aside).

    Only decides which reason a failure gets; acceptance is the library verifier's call.
    """
    roots = trust.roots
    pool = [*chain, *trust.intermediates]

    def reaches_root(cert: x509.Certificate, depth: int) -> bool:
        if any(_issued_by(cert, root) for root in roots):
            return True
        if depth >= MAX_CHAIN_DEPTH:
            return False
        return any(c != cert and _issued_by(cert, c) and reaches_root(c, depth + 1) for c in pool)

    return reaches_root(leaf, 0)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # wrong signature, unsupported key: either way not issued by it
        return False
    return True


def _check_validity(leaf: x509.Certificate, now: datetime) -> None:
    if now < leaf.not_valid_before_utc:
        raise Refusal("cert-not-yet-valid")
    if now > leaf.not_valid_after_utc:
        raise Refusal("cert-expired")


def _check_client_usage(leaf: x509.Certificate) -> None:
    """A client certificate must say it is for client authentication, explicitly."""
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as error:
        raise Refusal("cert-wrong-usage") from error
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise Refusal("cert-wrong-usage")
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not key_usage.digital_signature:
        raise Refusal("cert-wrong-usage")


def _library_verified_path(
    trust: CommunityTrust, leaf: x509.Certificate, chain: list[x509.Certificate], now: datetime
) -> list[x509.Certificate] | None:
    store = trust.store()
    if store is None:
        return None
    intermediates = list({fingerprint(c): c for c in [*chain, *trust.intermediates]}.values())
    verifier = PolicyBuilder().store(store).time(now).build_client_verifier()
    try:
        return verifier.verify(leaf, intermediates).chain
    except VerificationError as error:
        log.info("certificate not accepted for community %s: %s", trust.community.slug, error)
        return None


def _check_revocation(trust: CommunityTrust, path: list[x509.Certificate], now: datetime) -> None:
    """Each certificate below the root must be absent from its issuer's current CRL."""
    for cert, issuer in pairwise(path):
        anchor = trust.anchor_for(issuer)
        crl = anchor.revocation.crl if anchor is not None else None
        if anchor is None or crl is None or not anchor.revocation.is_current(now):
            # Not knowing is not "not revoked": refuse until a current CRL is stored.
            log.warning(
                "no current CRL from %s (community %s)",
                issuer.subject.rfc4514_string(),
                trust.community.slug,
            )
            raise Refusal("crl-unavailable")
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number):
            raise Refusal("cert-revoked")
