"""The shape every security check shares: run on API requests, refuse with an OperationOutcome."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from common.outage import is_database_unavailable

from ..context import SecurityContext, context_of
from ..paths import is_api, is_metadata, is_public
from ..refusal import Refusal, refusal_response

log = logging.getLogger(__name__)


def refused(context: SecurityContext, refusal: Refusal) -> HttpResponse:
    """The refusal's response; its reason code goes to the audit record."""
    context.outcome = refusal.reason.code
    return refusal_response(refusal)


class CheckMiddleware:
    """Runs `check` on API requests; a Refusal it raises becomes the response."""

    # Key, token and scope checks leave the CapabilityStatement alone; transport checks do not.
    applies_to_metadata = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.applies(request):
            context = context_of(request)
            try:
                self.check(request, context)
            except Refusal as refusal:
                return refused(context, refusal)
            except Exception as error:
                # A check that could not reach the database has refused nobody: come back later.
                # Anything else (a cancelled statement too) goes on to the error handlers.
                if not is_database_unavailable(error):
                    raise
                log.warning(
                    "%s: database unavailable (%s)", type(self).__name__, type(error).__name__
                )
                return refused(context, Refusal("database-unavailable"))
        return self.get_response(request)

    def applies(self, request: HttpRequest) -> bool:
        if is_public(request) or not is_api(request):
            return False
        return self.applies_to_metadata or not is_metadata(request)

    def check(self, request: HttpRequest, context: SecurityContext) -> None:
        raise NotImplementedError
