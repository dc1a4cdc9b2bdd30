"""Certificate builders: root and intermediate CAs, TLS servers, and clients (organisation or
Direct address). Every certificate carries AKI/SKI, key usage and, when set, a CRL location."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import PkiError
from .keys import PrivateKey

# Issued certificates start slightly in the past so a relying party with a slow clock accepts them.
BACKDATE = dt.timedelta(minutes=5)
_DIRECT_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}")


@dataclass(frozen=True)
class Issuer:
    """The CA that signs: its certificate, key and the CRL URL to embed (may be empty)."""

    certificate: x509.Certificate
    key: PrivateKey
    crl_url: str = ""


@dataclass(frozen=True)
class Subject:
    """Who a certificate is for; `dns`, `ips`, `emails` and `uris` become its subjectAltName."""

    common_name: str
    organization: str = ""
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    emails: tuple[str, ...] = field(default=())
    uris: tuple[str, ...] = ()

    def name(self) -> x509.Name:
        attributes = []
        if self.organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization))
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        return x509.Name(attributes)

    def alt_names(self) -> list[x509.GeneralName]:
        return [
            *(x509.DNSName(name) for name in self.dns),
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in self.ips),
            *(x509.RFC822Name(email) for email in self.emails),
            *(x509.UniformResourceIdentifier(uri) for uri in self.uris),
        ]


def self_signed_root(subject: Subject, key: PrivateKey, days: int, serial: int) -> x509.Certificate:
    """A root CA: self-signed, no path length limit below it."""
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject.name())
        .issuer_name(subject.name())
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = builder.add_extension(ski, critical=False).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    )
    return builder.sign(key, hashes.SHA256())


def intermediate_ca(
    issuer: Issuer, subject: Subject, public_key: CertificatePublicKeyTypes, days: int, serial: int
) -> x509.Certificate:
    """An issuing CA that may sign end entities only (pathLen 0)."""
    builder = _builder_under(issuer, subject.name(), public_key, days, serial)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True
    ).add_extension(_ca_key_usage(), critical=True)
    return builder.sign(issuer.key, hashes.SHA256())


def server_certificate(
    issuer: Issuer, subject: Subject, public_key: CertificatePublicKeyTypes, days: int, serial: int
) -> x509.Certificate:
    """A TLS server certificate: serverAuth, names in the SAN (clients ignore the CN)."""
    if not subject.dns and not subject.ips:
        raise PkiError("a server certificate needs at least one DNS name or IP address")
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    return _leaf(issuer, subject, public_key, days, serial, usages)


def organization_client(
    issuer: Issuer,
    fqdn: str,
    organization: str,
    public_key: CertificatePublicKeyTypes,
    days: int,
    serial: int,
    uris: Sequence[str] = (),
) -> x509.Certificate:
    """A system's client certificate: clientAuth, SAN DNS = the system's FQDN, O = organisation;
    `uris` add SAN URIs (UDAP names the client software by one)."""
    for uri in uris:
        require_software_uri(uri)
    subject = Subject(common_name=fqdn, organization=organization, dns=(fqdn,), uris=tuple(uris))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    return _leaf(issuer, subject, public_key, days, serial, usages)


def direct_address_client(
    issuer: Issuer,
    address: str,
    organization: str,
    public_key: CertificatePublicKeyTypes,
    days: int,
    serial: int,
) -> x509.Certificate:
    """An address-level certificate for a Direct address: clientAuth and emailProtection (S/MIME),
    SAN rfc822Name = the address."""
    require_direct_address(address)
    subject = Subject(common_name=address, organization=organization, emails=(address,))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]
    return _leaf(issuer, subject, public_key, days, serial, usages, encrypts_mail=True)


def require_software_uri(uri: str) -> None:
    # UDAP software statements are issued by this URI; an https URL with a host, ASCII only.
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.hostname or not uri.isascii() or " " in uri:
        raise PkiError(f"{uri!r} is not an https URI for the client software")


def require_direct_address(address: str) -> None:
    # rfc822Name is an IA5String: ASCII only, one @, a dotted domain.
    if not _DIRECT_ADDRESS.fullmatch(address):
        raise PkiError(f"{address!r} is not a Direct address (local@domain.example)")


def _leaf(
    issuer: Issuer,
    subject: Subject,
    public_key: CertificatePublicKeyTypes,
    days: int,
    serial: int,
    usages: list[x509.ObjectIdentifier],
    encrypts_mail: bool = False,
) -> x509.Certificate:
    builder = _builder_under(issuer, subject.name(), public_key, days, serial)
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(public_key, encrypts_mail), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(subject.alt_names()), critical=False)
    )
    return builder.sign(issuer.key, hashes.SHA256())


def _builder_under(
    issuer: Issuer, name: x509.Name, public_key: CertificatePublicKeyTypes, days: int, serial: int
) -> x509.CertificateBuilder:
    """An unsigned certificate under `issuer`: names, dates, key ids and CRL location.

    It checks nothing about issuance; that is security.trust.chains.issued_by.
    """
    now = _now()
    not_after = now + dt.timedelta(days=days)
    if not_after > issuer.certificate.not_valid_after_utc:
        # A certificate outliving its CA would fail verification once the CA expires.
        expiry = issuer.certificate.not_valid_after_utc
        raise PkiError(f"{days} days would outlive the CA (expires {expiry:%Y-%m-%d})")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(issuer.certificate), critical=False)
    )
    if issuer.crl_url:
        builder = builder.add_extension(crl_distribution_points(issuer.crl_url), critical=False)
    return builder


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        # Our CAs hold the EC or RSA keys PrivateKey allows; the wider union cannot occur.
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def crl_distribution_points(url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return x509.CRLDistributionPoints([point])


def _ca_key_usage() -> x509.KeyUsage:
    return _key_usage(key_cert_sign=True, crl_sign=True)


def _leaf_key_usage(public_key: CertificatePublicKeyTypes, encrypts_mail: bool) -> x509.KeyUsage:
    # S/MIME encryption to an RSA key is key transport; to an EC key it is key agreement.
    if not encrypts_mail:
        return _key_usage(digital_signature=True)
    if isinstance(public_key, rsa.RSAPublicKey):
        return _key_usage(digital_signature=True, key_encipherment=True)
    return _key_usage(digital_signature=True, key_agreement=True)


def _key_usage(**granted: Any) -> x509.KeyUsage:
    flags = dict.fromkeys(
        [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    return x509.KeyUsage(**{**flags, **granted})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
