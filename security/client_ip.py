"""Who connected to us, and the client's address seen through our own TLS terminator.

Behind nginx every REMOTE_ADDR is nginx's, so a lockout by (username, address) would key on the
proxy: every client would share one address and one attacker's failures would lock the username
for all of them, and the request audit would name nginx for every request. Only a trusted proxy
may say who its client was, and only the hops that trusted proxies appended to X-Forwarded-For
are believed; the rest of the header is the client's claim.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

log = logging.getLogger(__name__)

FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"

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


def trusted_proxies() -> tuple[bool, tuple[Network, ...]]:
    """SECURITY_TRUSTED_PROXIES read: (unix socket trusted?, trusted networks)."""
    return _trusted(tuple(settings.SECURITY_TRUSTED_PROXIES))


def is_trusted_proxy(remote_addr: str) -> bool:
    """Whether the peer that connected to us is a configured TLS terminator."""
    unix, networks = trusted_proxies()
    address = parse_ip(remote_addr or "")
    if address is None:
        return unix
    return any(address in network for network in networks)


def client_ip_address(request: HttpRequest) -> str | None:
    """The client's address: lockouts (AXES_CLIENT_IP_CALLABLE) and the audit record it."""
    remote_addr = request.META.get("REMOTE_ADDR")
    if not is_trusted_proxy(remote_addr or ""):
        # Anyone else's X-Forwarded-For is a claim it could rotate to dodge the lockout.
        return remote_addr
    return forwarded_client(request.META.get(FORWARDED_FOR, "")) or remote_addr


def forwarded_client(header: str) -> str | None:
    """The right-most hop that is not a trusted proxy; None when the header cannot be relied on.

    Read from the right: each trusted proxy appends the peer it saw, so the first untrusted hop is
    the real client and everything to its left (the left-most above all) is what it chose to send.
    """
    hops = [hop.strip() for hop in header.split(",")]
    if hops == [""]:
        return None
    for hop in reversed(hops):
        address = parse_ip(hop)
        if address is None:
            # A hop we had to believe is garbled: nothing further left can be located either.
            return None
        if not is_trusted_proxy(str(address)):
            return str(address)
    # Every hop is a trusted proxy: the request began on the first of them.
    return str(parse_ip(hops[0]))
