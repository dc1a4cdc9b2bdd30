"""The shape every security check shares: run on API requests, refuse with an OperationOutcome."""

from __future__ import annotations

from ..context import SecurityContext, context_of
from ..paths import is_api, is_metadata, is_public
from ..refusal import Refusal, refusal_response


class CheckMiddleware:
    """Runs `check` on API requests; a Refusal it raises becomes the response."""

    # Key, token and scope checks leave the CapabilityStatement alone; transport checks do not.
    applies_to_metadata = True

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self.applies(request):
            context = context_of(request)
            try:
                self.check(request, context)
            except Refusal as refusal:
                context.outcome = refusal.reason.code
                return refusal_response(refusal)
        return self.get_response(request)

    def applies(self, request) -> bool:
        if is_public(request) or not is_api(request):
            return False
        return self.applies_to_metadata or not is_metadata(request)

    def check(self, request, context: SecurityContext) -> None:
        raise NotImplementedError
