"""Where a notification may go, and the channel headers kept as secrets.

An endpoint is refused unless it is `https` (plain `http` only to a loopback address when
SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK is on, for tests and local development), and unless every
address its host resolves to is public: loopback, private, link-local, shared, multicast and
reserved ranges are refused unless listed in SUBSCRIPTIONS_ENDPOINT_ALLOWLIST (CIDR). The check
runs when the Subscription is written and again before every delivery, and the connection goes
to the address that was checked, so a name re-pointed at an internal host in between (DNS
rebinding) reaches nothing.

Headers (`channel.header`, often a bearer token for the subscriber) are encrypted with Fernet
under a key derived (HKDF) from SUBSCRIPTIONS_HEADER_SECRET, as the signing keys are
(security/oauth/signing.py); the stored resource carries only their names with a masked value.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

HKDF_INFO = b"fhir-directory subscription channel headers"
MASK = "****"
MAX_HEADERS = 10
MAX_HEADER_LENGTH = 4096
# Set by the sender itself; a subscriber's header of these names would corrupt the request.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "user-agent"}
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DeliveryFailed(Exception):
    """Not delivered; the message is safe to log and to show the owner."""


class EndpointRefused(ValueError):
    """The endpoint may not be used; the message is safe to show the client."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (Host header, TLS server name)
    port: int
    path: str  # path and query
    address: str  # the checked address the connection goes to


def check_endpoint(url: str) -> Target:
    """The endpoint's checked target, or EndpointRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointRefused("channel.endpoint must be an absolute https URL")
    if parts.username or parts.password:
        raise EndpointRefused("channel.endpoint must not carry credentials; use channel.header")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EndpointRefused("channel.endpoint has an invalid port") from None
    addresses = _resolve(parts.hostname, port)
    for address in addresses:
        _check_address(parts.scheme, address)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, str(addresses[0]))


def check_mailto(url: str) -> str:
    """The one address of a `mailto:` endpoint, or EndpointRefused.

    Only a bare address: `?cc=`, `?bcc=`, `?body=` and several recipients would let a
    subscription copy notifications to addresses other than its own endpoint.
    """
    scheme, _, rest = url.partition(":")
    address = unquote(rest)
    if scheme.lower() != "mailto" or "?" in rest or "," in address:
        raise EndpointRefused("channel.endpoint must be mailto:one-address for an email channel")
    try:
        validate_email(address)
    except ValidationError:
        raise EndpointRefused("channel.endpoint is not a valid email address") from None
    return address


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise EndpointRefused("channel.endpoint's host does not resolve") from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise EndpointRefused("channel.endpoint's host does not resolve")
    return found


def _check_address(scheme: str, address: IPAddress) -> None:
    if _allow_listed(address):
        return
    loopback_test = (
        settings.SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK
        and settings.ENVIRONMENT != "prod"
        and address.is_loopback
    )
    if scheme != "https" and not loopback_test:
        raise EndpointRefused("channel.endpoint must be an https URL")
    if loopback_test:
        return
    if not address.is_global or address.is_multicast:
        raise EndpointRefused("channel.endpoint points at an address this server does not call")


def _allow_listed(address: IPAddress) -> bool:
    for cidr in settings.SUBSCRIPTIONS_ENDPOINT_ALLOWLIST:
        network = ipaddress.ip_network(cidr, strict=False)
        if address.version == network.version and address in network:
            return True
    return False


# ---------------------------------------------------------------- headers


def parse_headers(lines: list) -> list[tuple[str, str]]:
    """`Name: value` lines as pairs; ValueError naming the problem."""
    if len(lines) > MAX_HEADERS:
        raise ValueError(f"at most {MAX_HEADERS} channel.header values")
    pairs = []
    for line in lines:
        name, sep, value = str(line).partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not _token(name) or len(line) > MAX_HEADER_LENGTH:
            raise ValueError("each channel.header must be 'Name: value'")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"channel.header may not set {name}")
        if any(c in value for c in "\r\n\x00"):
            raise ValueError("a channel.header value must be one line")
        pairs.append((name, value))
    return pairs


def _token(name: str) -> bool:
    return all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name)


def masked(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{name}: {MASK}" for name, _ in pairs]


def _fernet() -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        settings.SUBSCRIPTIONS_HEADER_SECRET.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_headers(pairs: list[tuple[str, str]]) -> str:
    return _fernet().encrypt(json.dumps(pairs).encode()).decode("ascii") if pairs else ""


def decrypt_headers(token: str) -> list[tuple[str, str]]:
    """The stored headers; [] for none. InvalidToken when the secret changed since."""
    if not token:
        return []
    return [tuple(pair) for pair in json.loads(_fernet().decrypt(token.encode("ascii")))]


__all__ = [
    "DeliveryFailed",
    "EndpointRefused",
    "InvalidToken",
    "check_endpoint",
    "check_mailto",
    "parse_headers",
]
