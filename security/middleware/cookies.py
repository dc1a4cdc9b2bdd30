"""Cookies sent over HTTPS are Secure, whatever the environment.

Django marks the session and CSRF cookies Secure by setting (on in production), not by request;
behind nginx in development (`make demo`) the admin is reached over HTTPS too, and a cookie set
there must never travel back over plain HTTP.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SecureCookiesMiddleware:
    """Marks every cookie of a response to an HTTPS request Secure."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Only the trusted proxy's X-Forwarded-Proto counts: TrustedProxyMiddleware removes
        # everyone else's before is_secure() reads it.
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response
