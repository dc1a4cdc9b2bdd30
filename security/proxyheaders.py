"""Reading the client certificate a TLS terminator passes upstream, in each proxy's format.

Each parser takes the raw header value and returns the leaf and any chain certificates, or raises
MalformedCertHeader. Parsers only take each proxy's framing apart; decoding the certificates is
the trust core's (security/trust/certificates.py), and trusting them is verification.py's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote

from cryptography import x509

from common.lru import BoundedLRU

from .trust.certificates import (
    CertificateError,
    fingerprint,
    load_base64_der,
    load_escaped_pem,
    subject,
)

# Far above any real chain; keeps a hostile header from costing much to parse.
MAX_HEADER_CHARS = 64 * 1024
MAX_CERTS = 8


class MalformedCertHeader(ValueError):
    """The header is present but does not hold a readable certificate."""


@dataclass(frozen=True)
class PresentedCertificate:
    leaf: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    # Spelled once per parsed header (parse remembers it), not on every request.
    @cached_property
    def fingerprints(self) -> tuple[str, ...]:
        """SHA-256 fingerprints of the leaf, then of each chain certificate."""
        return (fingerprint(self.leaf), *(fingerprint(c) for c in self.chain))

    @cached_property
    def subject(self) -> str:
        return subject(self.leaf)


def _escaped_pem(value: str) -> list[x509.Certificate]:
    try:
        return _bounded(load_escaped_pem(value))
    except CertificateError as error:
        raise MalformedCertHeader(str(error)) from error


def _base64_der(text: str) -> x509.Certificate:
    try:
        return load_base64_der(text)
    except CertificateError as error:
        raise MalformedCertHeader(str(error)) from error


def _bounded(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    if not certs:
        raise MalformedCertHeader("no certificate")
    if len(certs) > MAX_CERTS:
        raise MalformedCertHeader("too many certificates")
    return certs


def _split(certs: list[x509.Certificate]) -> PresentedCertificate:
    leaf, *chain = certs
    return PresentedCertificate(leaf, [c for c in chain if c != leaf])


def parse_escaped_pem(value: str) -> PresentedCertificate:
    """nginx `$ssl_client_escaped_cert` / ingress-nginx `ssl-client-cert`: URL-escaped PEM."""
    return _split(_escaped_pem(value))


def parse_aws_alb(value: str) -> PresentedCertificate:
    """AWS ALB `X-Amzn-Mtls-Clientcert`: URL-encoded PEM leaving "+", "=" and "/" as they are."""
    return _split(_escaped_pem(value))


def parse_traefik(value: str) -> PresentedCertificate:
    """Traefik `X-Forwarded-Tls-Client-Cert`: URL-escaped base64 DER, comma-separated chain."""
    # Base64 has no commas, so splitting after unescaping also handles an escaped separator.
    parts = [p.strip() for p in unquote(value).split(",")]
    if any(not p for p in parts):
        raise MalformedCertHeader("empty certificate in list")
    return _split(_bounded([_base64_der(p) for p in parts]))


def parse_envoy(value: str) -> PresentedCertificate:
    """Envoy `X-Forwarded-Client-Cert`: the element the last hop (our proxy) appended."""
    elements = _split_outside_quotes(value, ",")
    fields = _xfcc_fields(elements[-1])
    cert = fields.get("cert")
    if not cert:
        raise MalformedCertHeader("XFCC element without Cert")
    leaf = _escaped_pem(cert)
    if len(leaf) != 1:
        raise MalformedCertHeader("XFCC Cert holds more than one certificate")
    chain = _escaped_pem(fields["chain"]) if fields.get("chain") else []
    return _split(_bounded([leaf[0], *chain]))


def _xfcc_fields(element: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in _split_outside_quotes(element, ";"):
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise MalformedCertHeader("XFCC pair without key")
        key = key.strip().lower()
        # URI and DNS may repeat; Cert and Chain must not, or which one counts is ambiguous.
        if key in ("cert", "chain", "hash") and key in fields:
            raise MalformedCertHeader(f"XFCC repeats {key}")
        fields[key] = _unquote_xfcc_value(raw.strip())
    return fields


def _unquote_xfcc_value(raw: str) -> str:
    if not raw.startswith('"'):
        if '"' in raw:
            raise MalformedCertHeader("stray quote in XFCC value")
        return raw
    chars, escaped = [], False
    for position, char in enumerate(raw[1:], start=1):
        if escaped:
            chars.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            if position != len(raw) - 1:
                raise MalformedCertHeader("text after XFCC quoted value")
            return "".join(chars)
        else:
            chars.append(char)
    raise MalformedCertHeader("unterminated XFCC quoted value")


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on `separator` except inside double quotes (where backslash escapes)."""
    parts: list[str] = []
    current: list[str] = []
    quoted, escaped = False, False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted or escaped:
        raise MalformedCertHeader("unterminated quote")
    parts.append("".join(current))
    parts = [p.strip() for p in parts]
    if any(not p for p in parts):
        raise MalformedCertHeader("empty element")
    return parts


@dataclass(frozen=True)
class HeaderFormat:
    cert_header: str  # WSGI META key
    verify_header: str | None  # the proxy's own verification result, where it sends one
    parse: Callable[[str], PresentedCertificate]


FORMATS = {
    "nginx": HeaderFormat("HTTP_X_SSL_CLIENT_CERT", "HTTP_X_SSL_CLIENT_VERIFY", parse_escaped_pem),
    "ingress-nginx": HeaderFormat(
        "HTTP_SSL_CLIENT_CERT", "HTTP_SSL_CLIENT_VERIFY", parse_escaped_pem
    ),
    "envoy": HeaderFormat("HTTP_X_FORWARDED_CLIENT_CERT", None, parse_envoy),
    "traefik": HeaderFormat("HTTP_X_FORWARDED_TLS_CLIENT_CERT", None, parse_traefik),
    "aws-alb": HeaderFormat("HTTP_X_AMZN_MTLS_CLIENTCERT", None, parse_aws_alb),
}

# Every header any supported proxy uses for client-certificate data, in any format; stripped from
# requests that did not come through a trusted proxy, so no check or view can read a forged one.
CERT_HEADER_PREFIXES = (
    "HTTP_X_SSL_CLIENT_",
    "HTTP_SSL_CLIENT_",
    "HTTP_X_FORWARDED_CLIENT_CERT",
    "HTTP_X_FORWARDED_TLS_CLIENT_CERT",
    "HTTP_X_AMZN_MTLS_",
)


def cert_header_keys(meta: dict) -> list[str]:
    return [key for key in meta if key.startswith(CERT_HEADER_PREFIXES)]


# A client sends the same header on every request; decoding its PEM, fingerprints and subject
# cost about 0.2 ms a request. Keyed by the exact text and parser, so another certificate (or
# another spelling of one) is always parsed afresh; only successes and only public certificate
# data are kept, and a flood of distinct certificates only evicts.
_parsed: BoundedLRU[tuple[Callable[[str], PresentedCertificate], str], PresentedCertificate]
_parsed = BoundedLRU(256)


def parse(fmt: HeaderFormat, value: str) -> PresentedCertificate:
    """Parse `value` per `fmt`, turning any decoding failure into MalformedCertHeader."""
    if len(value) > MAX_HEADER_CHARS:
        raise MalformedCertHeader("header too long")
    key = (fmt.parse, value)
    found = _parsed.get(key)
    if found is not None:
        return found
    try:
        presented = fmt.parse(value)
    except MalformedCertHeader:
        raise
    except Exception as error:  # fail closed: whatever breaks while decoding is "malformed"
        raise MalformedCertHeader("unreadable") from error
    _parsed.put(key, presented)
    return presented
