"""Middleware that only the web admin needs, skipped on /fhir.

Sessions, CSRF, the user, one-time-password state, messages and the frame header serve staff in a
browser. /fhir has none of them: its clients are systems authenticated by certificate, key and
token (security.middleware.*), its views never read a session or a user, and SecurityHeaders sets
X-Frame-Options on every response. Each class here is the Django middleware it subclasses (so
Django's own system checks still find it) with /fhir passed straight through.

django-axes stays as it is: it only acts on a lockout flagged by a login, and its deployment
check looks for its own dotted path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.deprecation import MiddlewareMixin
from django_otp.middleware import OTPMiddleware

from ..paths import is_api

# The type checker sees the mixin as the MiddlewareMixin it always joins; at run time it is a
# plain mixin, since a second MiddlewareMixin.__init__ would break django-otp's own __init__.
if TYPE_CHECKING:
    _Mixin = MiddlewareMixin
else:
    _Mixin = object


class _SkippedOnApi(_Mixin):
    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if is_api(request):
            return self.get_response(request)
        return super().__call__(request)


class AdminSession(_SkippedOnApi, SessionMiddleware):
    pass


class AdminCsrf(_SkippedOnApi, CsrfViewMiddleware):
    def process_view(
        self,
        request: HttpRequest,
        callback: Callable[..., Any],
        callback_args: Any,
        callback_kwargs: Any,
    ) -> HttpResponseForbidden | None:
        if is_api(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AdminAuthentication(_SkippedOnApi, AuthenticationMiddleware):
    pass


class AdminOTP(_SkippedOnApi, OTPMiddleware):
    pass


class AdminMessages(_SkippedOnApi, MessageMiddleware):
    pass


class AdminXFrameOptions(_SkippedOnApi, XFrameOptionsMiddleware):
    pass
