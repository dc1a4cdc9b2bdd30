"""Only the TLS terminator may tell us about the client certificate.

Certificate headers from any other peer are deleted before anything can read them; outside
development such requests are refused, since they bypassed the terminator.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings

from ..context import SecurityContext, context_of
from ..proxyheaders import cert_header_keys
from ..refusal import Refusal
from .base import CheckMiddleware

log = logging.getLogger(__name__)

# Under gunicorn on a unix socket REMOTE_ADDR is empty or a path, never an IP address.
UNIX_SOCKET = "unix"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[bool, tuple[Network, ...]]:
    """(unix socket trusted?, trusted networks); an entry that is not a CIDR is ignored, loudly."""
    networks = []
    for entry in entries:
        if entry.strip().lower() == UNIX_SOCKET:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            log.error("SECURITY_TRUSTED_PROXIES entry %r is not a CIDR; ignored", entry)
    unix = any(e.strip().lower() == UNIX_SOCKET for e in entries)
    return unix, tuple(networks)


def parse_ip(remote_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in `remote_addr`, IPv4-mapped IPv6 as IPv4; None if it is not an address."""
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_trusted_proxy(remote_addr: str) -> bool:
    """Whether the peer that connected to us is a configured TLS terminator."""
    unix, networks = _trusted(tuple(settings.SECURITY_TRUSTED_PROXIES))
    address = parse_ip(remote_addr or "")
    if address is None:
        return unix
    return any(address in network for network in networks)


class TrustedProxyMiddleware(CheckMiddleware):
    """Marks requests from trusted proxies; strips certificate headers from everyone else."""

    def __call__(self, request):
        # Stripped on every path, API or not, so no later code can read a forged header.
        context = context_of(request)
        context.from_trusted_proxy = is_trusted_proxy(request.META.get("REMOTE_ADDR", ""))
        if not context.from_trusted_proxy:
            forged = cert_header_keys(request.META)
            for key in forged:
                del request.META[key]
            if forged:
                log.warning(
                    "client certificate headers from untrusted peer %s ignored",
                    context.remote_addr,
                )
        return super().__call__(request)

    def check(self, request, context: SecurityContext) -> None:
        if not context.from_trusted_proxy and settings.ENVIRONMENT != "dev":
            raise Refusal("proxy-untrusted")
