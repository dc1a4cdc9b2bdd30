"""A small but real test PKI made with `cryptography`, shared by the security tests.

Two trust communities (A and B), each a root and an intermediate that issues client certificates,
plus a CA nobody trusts. EC P-256 keys keep generation fast; `build_pki()` is cached per process.
Also here: how a TLS terminator would pass a certificate upstream, for each supported format.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)

CLIENT_A_DNS = "client-a.example.org"
CLIENT_B_DNS = "client-b.example.org"


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key (test material only)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


@dataclass(frozen=True)
class Community:
    """One trust community's CAs and the CRLs they issue."""

    slug: str
    root: Issued
    intermediate: Issued
    root_crl: x509.CertificateRevocationList  # fresh, revokes nothing
    intermediate_crl: x509.CertificateRevocationList  # fresh, revokes the "revoked" leaf
    stale_intermediate_crl: x509.CertificateRevocationList  # next_update in the past
    forged_intermediate_crl: x509.CertificateRevocationList  # right issuer name, wrong key
    leaves: dict[str, Issued] = field(default_factory=dict)


@dataclass(frozen=True)
class PKI:
    a: Community
    b: Community
    unknown_root: Issued
    unknown_leaf: Issued  # clientAuth, SAN client-a.example.org, but from an untrusted CA

    @property
    def valid(self) -> Issued:
        return self.a.leaves["valid"]

    @property
    def expired(self) -> Issued:
        return self.a.leaves["expired"]

    @property
    def not_yet_valid(self) -> Issued:
        return self.a.leaves["not_yet_valid"]

    @property
    def revoked(self) -> Issued:
        return self.a.leaves["revoked"]

    @property
    def wrong_eku(self) -> Issued:
        return self.a.leaves["wrong_eku"]

    @property
    def server(self) -> Issued:
        return self.a.leaves["server"]

    @property
    def valid_b(self) -> Issued:
        return self.b.leaves["valid"]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, org: str = "Directory Test PKI") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def make_root(common_name: str, key=None) -> Issued:
    """A self-signed root CA valid for ten years around now."""
    key = key or _key()
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 365 * DAY)
        .not_valid_after(NOW + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _issued_builder(issuer: Issued, subject: x509.Name, key, not_before, not_after):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )


def make_intermediate(issuer: Issued, common_name: str, crl_url: str = "") -> Issued:
    """An intermediate CA below `issuer`; `crl_url` becomes its CRL distribution point."""
    key = _key()
    builder = _issued_builder(issuer, _name(common_name), key, NOW - 300 * DAY, NOW + 1800 * DAY)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True
    ).add_extension(_ca_usage(), critical=True)
    if crl_url:
        builder = builder.add_extension(crl_distribution_points(crl_url), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def crl_distribution_points(url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return x509.CRLDistributionPoints([point])


def make_leaf(
    issuer: Issued,
    common_name: str,
    dns_names: tuple[str, ...] = (),
    usages: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    uris: tuple[str, ...] = (),
) -> Issued:
    """An end-entity certificate; by default a valid client certificate for a year.

    `uris` become SAN uniformResourceIdentifier names (a UDAP client's software URI)."""
    key = _key()
    builder = _issued_builder(
        issuer,
        _name(common_name, org="Directory Test Client"),
        key,
        not_before or NOW - 30 * DAY,
        not_after or NOW + 335 * DAY,
    )
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    )
    if dns_names or uris:
        names = [x509.DNSName(n) for n in dns_names]
        names += [x509.UniformResourceIdentifier(u) for u in uris]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def make_crl(
    issuer: Issued,
    revoked_serials: tuple[int, ...] = (),
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    signing_key=None,
) -> x509.CertificateRevocationList:
    """A CRL in `issuer`'s name, signed by its key unless `signing_key` says otherwise."""
    this_update = this_update or NOW - DAY
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(next_update or NOW + 7 * DAY)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
    )
    for serial in revoked_serials:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked)
    return builder.sign(signing_key or issuer.key, hashes.SHA256())


def crl_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def _community(slug: str, client_dns: str) -> Community:
    root = make_root(f"Community {slug.upper()} Root CA")
    intermediate = make_intermediate(root, f"Community {slug.upper()} Issuing CA")
    leaves = {
        "valid": make_leaf(intermediate, f"Client {slug.upper()}", (client_dns,)),
        "expired": make_leaf(
            intermediate,
            f"Expired {slug.upper()}",
            (f"expired.{client_dns}",),
            not_before=NOW - 400 * DAY,
            not_after=NOW - 35 * DAY,
        ),
        "not_yet_valid": make_leaf(
            intermediate,
            f"Future {slug.upper()}",
            (f"future.{client_dns}",),
            not_before=NOW + 10 * DAY,
            not_after=NOW + 400 * DAY,
        ),
        "revoked": make_leaf(intermediate, f"Revoked {slug.upper()}", (f"revoked.{client_dns}",)),
        "wrong_eku": make_leaf(
            intermediate,
            f"Server-only {slug.upper()}",
            (f"wrong-eku.{client_dns}",),
            usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
        ),
        "server": make_leaf(
            intermediate,
            f"server.{slug}.example.org",
            (f"server.{slug}.example.org",),
            usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
        ),
    }
    return Community(
        slug=slug,
        root=root,
        intermediate=intermediate,
        root_crl=make_crl(root),
        intermediate_crl=make_crl(intermediate, (leaves["revoked"].cert.serial_number,)),
        stale_intermediate_crl=make_crl(
            intermediate, this_update=NOW - 20 * DAY, next_update=NOW - 13 * DAY
        ),
        forged_intermediate_crl=make_crl(intermediate, signing_key=_key()),
        leaves=leaves,
    )


@lru_cache(maxsize=1)
def build_pki() -> PKI:
    """The whole test PKI, generated once per test process."""
    unknown_root = make_root("Unknown Root CA")
    return PKI(
        a=_community("a", CLIENT_A_DNS),
        b=_community("b", CLIENT_B_DNS),
        unknown_root=unknown_root,
        unknown_leaf=make_leaf(unknown_root, "Impostor", (CLIENT_A_DNS,)),
    )


# --- How TLS terminators pass the client certificate upstream -----------------------------------

# HTTP header name per format, and the verify-status header where the proxy sends one.
CERT_HEADERS = {
    "nginx": ("X-SSL-Client-Cert", "X-SSL-Client-Verify"),
    "ingress-nginx": ("ssl-client-cert", "ssl-client-verify"),
    "envoy": ("X-Forwarded-Client-Cert", None),
    "traefik": ("X-Forwarded-Tls-Client-Cert", None),
    "aws-alb": ("X-Amzn-Mtls-Clientcert", None),
}


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _as_cert(item) -> x509.Certificate:
    return item.cert if isinstance(item, Issued) else item


def encode_cert_header(cert, fmt: str = "nginx", chain=()) -> str:
    """The header value a proxy of format `fmt` would send for `cert` (+ `chain`)."""
    cert = _as_cert(cert)
    chain = [_as_cert(c) for c in chain]
    if fmt in ("nginx", "ingress-nginx"):
        return quote(_pem(cert) + "".join(_pem(c) for c in chain), safe="")
    if fmt == "envoy":
        digest = cert.fingerprint(hashes.SHA256()).hex()
        value = f'Hash={digest};Cert="{quote(_pem(cert), safe="")}"'
        if chain:
            value += f';Chain="{quote(_pem(cert) + "".join(_pem(c) for c in chain), safe="")}"'
        return value + f';Subject="{cert.subject.rfc4514_string()}"'
    if fmt == "traefik":
        parts = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)) for c in [cert, *chain]
        ]
        return ",".join(quote(p.decode("ascii"), safe="") for p in parts)
    if fmt == "aws-alb":
        return quote(_pem(cert) + "".join(_pem(c) for c in chain), safe="+=/")
    raise ValueError(f"unknown client certificate format {fmt!r}")


def http_headers(cert=None, fmt: str = "nginx", chain=(), verify: str | None = None) -> dict:
    """Request headers (for `requests`) as the proxy would set them; no cert -> verify NONE."""
    cert_header, verify_header = CERT_HEADERS[fmt]
    headers = {}
    if cert is not None:
        headers[cert_header] = encode_cert_header(cert, fmt, chain)
    if verify_header:
        headers[verify_header] = verify or ("SUCCESS" if cert is not None else "NONE")
    return headers


def cert_headers(cert=None, fmt: str = "nginx", chain=(), verify: str | None = None) -> dict:
    """The same headers as WSGI META keys, for Django's test client (`client.get(**headers)`)."""
    return {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in http_headers(cert, fmt, chain, verify).items()
    }


def make_localhost_server(issuer: Issued) -> Issued:
    """A TLS server certificate for a test server on loopback: SAN DNS localhost, IP 127.0.0.1."""
    key = _key()
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    builder = (
        _issued_builder(
            issuer, _name("localhost", org="Directory Test Server"), key, NOW - DAY, NOW + 30 * DAY
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)
