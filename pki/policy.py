"""Lifetimes and the warnings `pki_status` gives about what a CA issued."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from security.trust.certificates import is_ca

ROOT_DAYS = 3652  # ten years
INTERMEDIATE_DAYS = 1826  # five years
LEAF_DAYS = 548  # eighteen months
# A leaf in service for a year should be replaced before it is forgotten at 18 months.
REISSUE_AFTER = dt.timedelta(days=365)
EXPIRY_WARNING = dt.timedelta(days=90)


@dataclass(frozen=True)
class CertificateStatus:
    """What pki_status reports about one issued certificate."""

    certificate: x509.Certificate
    age: dt.timedelta
    expires_in: dt.timedelta
    revoked: bool
    warnings: tuple[str, ...]


def certificate_status(
    cert: x509.Certificate, revoked: bool, now: dt.datetime
) -> CertificateStatus:
    age = now - cert.not_valid_before_utc
    expires_in = cert.not_valid_after_utc - now
    # A CA certificate is replaced on its own (longer) schedule: only its expiry is a warning.
    reissue_after = None if is_ca(cert) else REISSUE_AFTER
    warnings = () if revoked else certificate_warnings(age, expires_in, reissue_after)
    return CertificateStatus(cert, age, expires_in, revoked, warnings)


def certificate_warnings(
    age: dt.timedelta, expires_in: dt.timedelta, reissue_after: dt.timedelta | None = REISSUE_AFTER
) -> tuple[str, ...]:
    """Why a live certificate needs attention: expired, expiring soon, or due for reissue."""
    if expires_in <= dt.timedelta(0):
        return ("expired",)
    warnings = []
    if reissue_after is not None and age > reissue_after:
        warnings.append(f"older than 12 months ({age.days} days): reissue it")
    if expires_in <= EXPIRY_WARNING:
        warnings.append(f"expires in {expires_in.days} days")
    return tuple(warnings)
