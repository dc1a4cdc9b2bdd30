"""Who issued a certificate, and whether it reaches a community's roots.

`issued_by` is the one issued-by check: the issuer name must match and the signature verify with
the issuer's key (cryptography's `verify_directly_issued_by`, the maintained primitive), so an
intermediate forged with the right name but another key is never taken for the real one.
`reaches_root` follows signatures only and serves to name a failure precisely;
`verified_client_path` is the library's full RFC 5280 path validation and decides acceptance.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from .certificates import extended_usages, fingerprint, is_ca

# Far deeper than any real PKI; bounds the search through a hostile pool of intermediates.
MAX_CHAIN_DEPTH = 8


class ChainError(Exception):
    """The library verifier found no acceptable path; the message says why (for the log)."""


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `certificate` (name and signature; dates and usage aside)."""
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception:  # wrong signature, unsupported key or algorithm: not issued by it
        return False
    return True


def is_self_signed(certificate: x509.Certificate) -> bool:
    return issued_by(certificate, certificate)


def reaches_root(
    certificate: x509.Certificate,
    roots: Iterable[x509.Certificate],
    pool: Iterable[x509.Certificate] = (),
) -> bool:
    """Whether signatures alone link `certificate` to one of `roots`, directly or through
    certificates of `pool` (at most MAX_CHAIN_DEPTH of them)."""
    roots, pool = list(roots), list(pool)

    def reaches(current: x509.Certificate, depth: int) -> bool:
        if any(issued_by(current, root) for root in roots):
            return True
        if depth >= MAX_CHAIN_DEPTH:
            return False
        return any(c != current and issued_by(current, c) and reaches(c, depth + 1) for c in pool)

    return reaches(certificate, 0)


def verified_client_path(
    leaf: x509.Certificate,
    roots: list[x509.Certificate],
    intermediates: Iterable[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    """The path leaf → root the library verifier builds for a TLS client at `now`, leaf first;
    ChainError when there is none (dates, usage, constraints or signatures)."""
    if not roots:
        raise ChainError("no root")
    unique = list({fingerprint(c): c for c in intermediates}.values())
    verifier = PolicyBuilder().store(Store(roots)).time(now).build_client_verifier()
    try:
        return verifier.verify(leaf, unique).chain
    except VerificationError as error:
        raise ChainError(str(error)) from error


def within_dates(path: Iterable[x509.Certificate], now: datetime) -> bool:
    return all(c.not_valid_before_utc <= now <= c.not_valid_after_utc for c in path)


def date_problem(certificate: x509.Certificate, now: datetime) -> str | None:
    """Why `now` is outside the certificate's dates ("not-yet-valid", "expired"), or None."""
    if now < certificate.not_valid_before_utc:
        return "not-yet-valid"
    if now > certificate.not_valid_after_utc:
        return "expired"
    return None


def is_client_certificate(leaf: x509.Certificate) -> bool:
    """Says explicitly that it is for TLS client authentication (extendedKeyUsage), and, when it
    restricts key usage, allows signatures (what a TLS client does with its key)."""
    usages = extended_usages(leaf)
    if usages is None or ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        return False
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return key_usage.digital_signature


def ca_problem(certificate: x509.Certificate) -> str | None:
    """Why `certificate` cannot act as a CA, or None when it can."""
    ca = is_ca(certificate)
    if ca is None:
        return "not a CA certificate (no basicConstraints)"
    if not ca:
        return "not a CA certificate (basicConstraints CA is false)"
    return None
