"""The page shown to a locked-out sign-in: plain, and telling nothing about the account."""

from typing import Any

from django.http import HttpRequest, HttpResponse

LOCKED_OUT_STATUS = 429
MESSAGE = "Too many failed sign-in attempts. Try again later or ask an administrator.\n"


def locked_out_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes AXES_LOCKOUT_CALLABLE: no username, limit or timing is echoed back."""
    return HttpResponse(MESSAGE, status=LOCKED_OUT_STATUS, content_type="text/plain")
