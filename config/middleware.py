"""Per-request database routing state (config.dbrouter): each request starts unwritten."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .dbrouter import request_scope


class ReadYourWritesMiddleware:
    """Scopes the router's "this request wrote" flag and chosen replica to one request.

    Without it a worker thread that wrote once would read from the primary for ever after.
    Place it first in MIDDLEWARE so the whole request, audit included, is in one scope.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope():
            return self.get_response(request)
