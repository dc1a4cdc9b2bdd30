"""Reading certificates and naming them: the one parser and the one fingerprint.

A certificate is named by the SHA-256 of its DER encoding in lowercase hex (`fingerprint`): the
form stored in TrustAnchor.fingerprint_sha256, CertificateIdentity.value (kind fingerprint) and
the audit. People read the colon-separated upper-case form (`display_fingerprint`) and OAuth
binds tokens by the base64url form (`x5t_s256`); both are derived from the same digest, and
typed input in any of the hex spellings is brought back with `canonical_fingerprint`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
_HEX_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
# How a person reads each kind of subjectAltName entry.
_SAN_LABELS: dict[type[x509.GeneralName], str] = {
    x509.DNSName: "DNS",
    x509.UniformResourceIdentifier: "URI",
    x509.RFC822Name: "email",
    x509.IPAddress: "IP",
    x509.DirectoryName: "DirName",
}


class CertificateError(ValueError):
    """The data is not the readable X.509 certificate(s) expected; the message is safe to show."""


# --- reading ------------------------------------------------------------------------------------


def load_certificate(data: bytes | str) -> x509.Certificate:
    """One certificate from PEM (text or bytes), DER bytes, or bare base64 of DER."""
    data = _as_bytes(data)
    try:
        if PEM_MARKER in data:
            return x509.load_pem_x509_certificate(data)
        if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER
            return x509.load_der_x509_certificate(data)
        # Base64 of DER without PEM armour, as the VhDir certificate extension stores it.
        return x509.load_der_x509_certificate(base64.b64decode(data, validate=False))
    except (ValueError, binascii.Error) as error:
        raise CertificateError(f"Not a readable X.509 certificate (PEM or DER): {error}") from None


def load_pem_certificate(pem: str | bytes) -> x509.Certificate:
    """The first certificate of PEM text; anything else (DER, bare base64) is refused."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as error:
        raise CertificateError("not a PEM certificate") from error


def load_pem_certificates(text: str | bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order; at least one."""
    try:
        # Strict: a header or file with anything but ASCII in it is not one we read around.
        text = text.encode("ascii") if isinstance(text, str) else text
    except UnicodeEncodeError as error:
        raise CertificateError("PEM does not parse") from error
    if b"-----BEGIN" not in text:
        raise CertificateError("no PEM certificate")
    # nginx's legacy $ssl_client_cert indents continuation lines with a tab.
    try:
        certificates = x509.load_pem_x509_certificates(text.replace(b"\t", b""))
    except ValueError as error:
        raise CertificateError("PEM does not parse") from error
    return certificates


def load_escaped_pem(value: str) -> list[x509.Certificate]:
    """A URL-escaped PEM bundle, as nginx, ingress-nginx, AWS ALB and Envoy pass it upstream."""
    # unquote, not unquote_plus: a literal "+" is base64, never an escaped space.
    return load_pem_certificates(unquote(value))


def load_base64_der(text: str) -> x509.Certificate:
    """Strict standard base64 of DER: a JOSE x5c entry or one of Traefik's header items."""
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as error:
        raise CertificateError("base64 DER does not parse") from error


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    # Only text is trimmed: DER is binary, and its last signature byte may look like whitespace.
    if data[:1] != b"\x30":
        data = data.strip()
    if not data:
        raise CertificateError("No certificate was given")
    return data


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode("ascii")


# --- naming -------------------------------------------------------------------------------------


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, lowercase hex: how a certificate is named everywhere here."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def display_fingerprint(canonical: str) -> str:
    """The canonical fingerprint as people compare it: upper-case byte pairs joined by ':'."""
    return ":".join(canonical[i : i + 2] for i in range(0, len(canonical), 2)).upper()


def canonical_fingerprint(text: str) -> str:
    """A typed fingerprint (colons, spaces, either case) in canonical form; ValueError if it is
    not a SHA-256 fingerprint."""
    value = (text or "").strip().replace(":", "").replace(" ", "").lower()
    if not _HEX_FINGERPRINT.fullmatch(value):
        raise ValueError("a fingerprint is 64 hex digits (SHA-256)")
    return value


def x5t_s256(certificate: x509.Certificate) -> str:
    """RFC 8705 x5t#S256: the same digest, base64url without padding (binds tokens to a
    certificate)."""
    digest = certificate.fingerprint(hashes.SHA256())
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --- what a certificate says --------------------------------------------------------------------


def subject(certificate: x509.Certificate) -> str:
    """The subject DN in RFC 4514 form, as subject identities and anchors store it."""
    return certificate.subject.rfc4514_string()


def organization(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else ""


def alt_names(
    certificate: x509.Certificate,
    kind: type[x509.DNSName] | type[x509.UniformResourceIdentifier] | type[x509.RFC822Name],
) -> list[str]:
    """The subjectAltName values of one kind (x509.DNSName, x509.UniformResourceIdentifier...)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(kind)


def labelled_alt_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """Every subjectAltName entry as `DNS:name`, `URI:...`, for a person to read."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    labelled = []
    for name in san:
        label = _SAN_LABELS.get(type(name), type(name).__name__)
        value = name.value.rfc4514_string() if isinstance(name, x509.DirectoryName) else name.value
        labelled.append(f"{label}:{value}")
    return tuple(labelled)


def extended_usages(certificate: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    """The extendedKeyUsage OIDs; None when the certificate has no such extension."""
    try:
        return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def is_ca(certificate: x509.Certificate) -> bool | None:
    """basicConstraints CA; None when the certificate has no basicConstraints."""
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None


# --- for people ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    """What a person needs to judge a certificate, plus its DER bytes for storage."""

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    fingerprint: str  # canonical: lowercase hex, the form client identities are pinned by
    der: bytes

    @property
    def fingerprint_display(self) -> str:
        return display_fingerprint(self.fingerprint)

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
    """The facts of one certificate given as PEM text or bytes, DER bytes or bare base64 of DER."""
    return describe(load_certificate(data))


def describe(certificate: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        subject=subject(certificate),
        issuer=certificate.issuer.rfc4514_string(),
        sans=labelled_alt_names(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint=fingerprint(certificate),
        der=der(certificate),
    )
