"""Reading X.509 certificates (PEM or DER) into the facts an administrator checks.

Shared by the directory admin (Endpoint certificates) and free for any other app to reuse:
`parse_certificate(data)` accepts bytes or text, PEM or DER, and raises CertificateError.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


class CertificateError(ValueError):
    """The data is not one readable X.509 certificate."""


@dataclass(frozen=True)
class CertificateInfo:
    """What a person needs to judge a certificate, plus its DER bytes for storage."""

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str  # upper-case hex pairs joined by ':'
    der: bytes

    @property
    def fingerprint_hex(self) -> str:
        """Lower-case hex without separators: the form client identities are pinned by."""
        return self.fingerprint_sha256.replace(":", "").lower()

    @property
    def der_base64(self) -> str:
        return base64.b64encode(self.der).decode("ascii")

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days until expiry; negative once expired."""
        return (self.not_after - (now or datetime.now(UTC))).days

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.not_after

    def expires_within(self, days: int, now: datetime | None = None) -> bool:
        """True when already expired or expiring in the next `days` days."""
        return self.not_after <= (now or datetime.now(UTC)) + timedelta(days=days)


def parse_certificate(data: bytes | str) -> CertificateInfo:
    """One certificate from PEM text, PEM bytes, DER bytes or bare base64 of DER."""
    certificate = _load(_as_bytes(data))
    der = certificate.public_bytes(serialization.Encoding.DER)
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        sans=_subject_alternative_names(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint_sha256=_colon_hex(certificate.fingerprint(hashes.SHA256())),
        der=der,
    )


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    # Only text is trimmed: DER is binary, and its last signature byte may look like whitespace.
    if data[:1] != b"\x30":
        data = data.strip()
    if not data:
        raise CertificateError("No certificate was given")
    return data


def _load(data: bytes) -> x509.Certificate:
    try:
        if PEM_MARKER in data:
            return x509.load_pem_x509_certificate(data)
        if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER
            return x509.load_der_x509_certificate(data)
        # Base64 of DER without PEM armour, as stored in the FHIR extension.
        return x509.load_der_x509_certificate(base64.b64decode(data, validate=False))
    except (ValueError, binascii.Error) as exc:
        raise CertificateError(f"Not a readable X.509 certificate (PEM or DER): {exc}") from None


def _subject_alternative_names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names = []
    for name in extension.value:
        label = {
            x509.DNSName: "DNS",
            x509.UniformResourceIdentifier: "URI",
            x509.RFC822Name: "email",
            x509.IPAddress: "IP",
            x509.DirectoryName: "DirName",
        }.get(type(name), type(name).__name__)
        value = name.value.rfc4514_string() if isinstance(name, x509.DirectoryName) else name.value
        names.append(f"{label}:{value}")
    return tuple(names)


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)
