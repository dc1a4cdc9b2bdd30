"""Response headers that every reply carries, API or admin, success or error."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# Directory data is personal data about practitioners: no shared or private cache may keep it.
NO_STORE = "no-store"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
ADMIN_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"


class SecurityHeadersMiddleware:
    """Sets no-store caching, HSTS, nosniff, frame denial and a CSP on every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["Cache-Control"] = NO_STORE
        response["Pragma"] = "no-cache"
        response["X-Content-Type-Options"] = "nosniff"
        response["X-Frame-Options"] = "DENY"
        # Browsers send `Origin: null` with no-referrer, which Django's CSRF check refuses, so the
        # admin keeps same-origin referrers; API responses leak nothing at all.
        response["Referrer-Policy"] = "no-referrer" if _is_api(request) else "same-origin"
        response["Strict-Transport-Security"] = self._hsts()
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = API_CSP if _is_api(request) else ADMIN_CSP
        return response

    @staticmethod
    def _hsts() -> str:
        seconds = getattr(settings, "SECURE_HSTS_SECONDS", 31536000) or 31536000
        return f"max-age={seconds}; includeSubDomains"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/fhir")
