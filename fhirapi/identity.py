"""Who a request comes from, as one opaque key that limits and per-client state are kept under.

The security middleware establishes the client (request.security); this layer only reads it, so
the search engine and the limits never depend on how the client was identified.
"""

from __future__ import annotations

from django.http import HttpRequest

# Under gunicorn on a unix socket the peer has no address; all such requests share one key.
UNKNOWN_PEER = "unknown"


def client_key(request: HttpRequest) -> str:
    """The registered API client's id; else its certificate's fingerprint; else its address."""
    context = getattr(request, "security", None)
    client = getattr(context, "client", None)
    if client is not None and client.pk is not None:
        return f"client:{client.pk}"
    fingerprint = getattr(context, "certificate_fingerprint", "")
    if fingerprint:
        return f"cert:{fingerprint}"
    address = getattr(context, "remote_addr", "") or request.META.get("REMOTE_ADDR", "")
    return f"addr:{address or UNKNOWN_PEER}"
