"""Only the TLS terminator may tell us about the client certificate and the client.

Certificate and forwarding headers from any other peer are deleted before anything can read them;
outside development such requests are refused, since they bypassed the terminator.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ..client_ip import is_trusted_proxy
from ..context import SecurityContext, context_of
from ..proxyheaders import cert_header_keys
from ..refusal import Refusal
from .base import CheckMiddleware

log = logging.getLogger(__name__)

# What only our proxy may say about the client: its address, and the scheme, host and port it
# reached the proxy on (Django's SECURE_PROXY_SSL_HEADER reads the scheme without asking who sent
# it). Exact keys: HTTP_X_FORWARDED_CLIENT_CERT is a certificate header (proxyheaders.py).
FORWARDED_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_REAL_IP",
)


class TrustedProxyMiddleware(CheckMiddleware):
    """Marks requests from trusted proxies; strips proxy-only headers from everyone else."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Stripped on every path, API or not, so no later code can read a forged header.
        context = context_of(request)
        context.from_trusted_proxy = is_trusted_proxy(request.META.get("REMOTE_ADDR", ""))
        if not context.from_trusted_proxy:
            forged = cert_header_keys(request.META)
            for key in [*forged, *FORWARDED_HEADERS]:
                request.META.pop(key, None)
            if forged:
                log.warning(
                    "client certificate headers from untrusted peer %s ignored",
                    context.remote_addr,
                )
        return super().__call__(request)

    def check(self, request: HttpRequest, context: SecurityContext) -> None:
        if not context.from_trusted_proxy and settings.ENVIRONMENT != "dev":
            raise Refusal("proxy-untrusted")
