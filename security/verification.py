"""Verifying a client certificate ourselves, whatever the TLS terminator already decided.

The chain is checked with cryptography's X.509 verifier against each community's roots; our own
checks before it only name the precise reason a certificate fails, and revocation is checked by
CRL for every certificate below the root. The checks themselves are the trust core's
(security/trust/chains.py); this module orders them and turns failures into refusals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from cryptography import x509

from common.outage import UNAVAILABLE_ERRORS

from . import truststore
from .models import TrustCommunity
from .refusal import Refusal
from .trust import chains
from .trust.certificates import fingerprint
from .truststore import CommunityTrust

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedCertificate:
    community: TrustCommunity
    chain: list[x509.Certificate]  # leaf first, root last
    fingerprint: str  # of the leaf, SHA-256 lowercase hex

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


def verify(
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    now: datetime,
    fingerprints: tuple[str, ...] | None = None,
) -> VerifiedCertificate:
    """Verify `leaf` (with proxy-sent `chain`) at `now`, or raise a Refusal naming why not.

    `fingerprints` (leaf, then chain) saves hashing them again when the caller has them.

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
    key = fingerprints or (fingerprint(leaf), *(fingerprint(c) for c in chain))
    remembered = snapshot.verified.get(key)
    # A remembered path out of its dates runs the full verification again, which names the
    # reason (or finds another path), as on a first sight.
    if remembered is not None and chains.within_dates(remembered[1].chain, now):
        trust, verified = remembered
        _check_revocation(trust, verified.chain, now)
        return verified
    # Refusals are not remembered: a fix (an anchor added, a fresh CRL) takes effect at once.
    trust, verified = _verify_chain(snapshot, leaf, chain, now)
    snapshot.remember(key, (trust, verified))
    return verified


def _verify_chain(
    snapshot: truststore.TrustSnapshot,
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    now: datetime,
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
    return chains.reaches_root(leaf, trust.roots, [*chain, *trust.intermediates])


def _check_validity(leaf: x509.Certificate, now: datetime) -> None:
    problem = chains.date_problem(leaf, now)
    if problem is not None:
        raise Refusal(f"cert-{problem}")


def _check_client_usage(leaf: x509.Certificate) -> None:
    """A client certificate must say it is for client authentication, explicitly."""
    if not chains.is_client_certificate(leaf):
        raise Refusal("cert-wrong-usage")


def _library_verified_path(
    trust: CommunityTrust, leaf: x509.Certificate, chain: list[x509.Certificate], now: datetime
) -> list[x509.Certificate] | None:
    try:
        return chains.verified_client_path(leaf, trust.roots, [*chain, *trust.intermediates], now)
    except chains.ChainError as error:
        log.info("certificate not accepted for community %s: %s", trust.community.slug, error)
        return None


def _check_revocation(trust: CommunityTrust, path: list[x509.Certificate], now: datetime) -> None:
    """Each certificate below the root must be absent from its issuer's current CRL."""
    for cert, issuer in pairwise(path):
        anchor = trust.anchor_for(issuer)
        # is_current implies a CRL; saying so lets the type checker see it too.
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
