"""The sign-in client's address for django-axes, seen through our own TLS terminator.

Behind nginx every REMOTE_ADDR is nginx's, so a lockout by (username, address) would key on the
proxy: every client would share one address and one attacker's failures would lock the username
for all of them. Only a trusted proxy may say who its client was, and only the hops that trusted
proxies appended to X-Forwarded-For are believed; the rest of the header is the client's claim.
"""

from __future__ import annotations

from .middleware.proxy import is_trusted_proxy, parse_ip

FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"


def client_ip_address(request) -> str | None:
    """django-axes AXES_CLIENT_IP_CALLABLE: the address lockouts are counted against."""
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
