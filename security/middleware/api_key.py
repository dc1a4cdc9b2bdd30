"""The API key check: a valid key of the client the certificate identified, if any."""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict

from common.outage import UNAVAILABLE_ERRORS

from ..context import SecurityContext
from ..keys import prefix_of, record_use, verify_key
from ..models import ApiClient, ApiKey
from ..paths import is_api
from ..refusal import Refusal
from .base import CheckMiddleware

logger = logging.getLogger(__name__)


class ApiKeyMiddleware(CheckMiddleware):
    """Refuses API requests without a valid key; records which key and client made them."""

    applies_to_metadata = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The key must never reach a view, even one this check skips (it could echo the URL).
        if is_api(request) and not self.applies(request):
            take_query_keys(request)
        return super().__call__(request)

    def check(self, request: HttpRequest, context: SecurityContext) -> None:
        presented = presented_key(request)
        context.key_prefix = prefix_of(presented)
        key = _verified(presented)
        client = key.client
        if context.client is not None and context.client.pk != client.pk:
            raise Refusal("key-wrong-client")
        if client.status != ApiClient.ACTIVE:
            raise Refusal("client-suspended")
        if context.client is None:
            context.client = client
        context.api_key = key
        _note_use(key, context.remote_addr)


def presented_key(request: HttpRequest) -> str:
    """The key from the header or the query string; strips it from the query either way."""
    from_header = request.headers.get(settings.SECURITY_API_KEY_HEADER, "").strip()
    from_query = take_query_keys(request)
    if len(set(from_query)) > 1:
        raise Refusal("key-invalid")
    if from_header and from_query and from_query[0] != from_header:
        raise Refusal("key-invalid")
    presented = from_header or (from_query[0] if from_query else "")
    if not presented:
        raise Refusal("key-missing")
    return presented


def take_query_keys(request: HttpRequest) -> list[str]:
    """Remove the key parameter from QUERY_STRING and request.GET; return its values."""
    name = settings.SECURITY_API_KEY_QUERY_PARAM
    raw = request.META.get("QUERY_STRING", "")
    kept, taken = [], []
    for part in raw.split("&"):
        field, _, value = part.partition("=")
        if unquote_plus(field) == name:
            taken.append(unquote_plus(value).strip())
        elif part:
            kept.append(part)
    if taken:
        # Other parameters keep their exact bytes; only the key's pairs are dropped.
        request.META["QUERY_STRING"] = "&".join(kept)
        request.GET = QueryDict(request.META["QUERY_STRING"], encoding=request.encoding)
    return taken


def _verified(presented: str) -> ApiKey:
    try:
        key = verify_key(presented)
    except UNAVAILABLE_ERRORS:
        raise  # the key could not be checked, not found invalid: CheckMiddleware answers 503
    except Exception as exc:
        # Fail closed; log the kind of failure only, never the presented value.
        logger.error("API key verification failed: %s", type(exc).__name__)
        raise Refusal("key-invalid") from None
    if key is None:
        raise Refusal("key-invalid")
    return key


def _note_use(key: ApiKey, remote_addr: str) -> None:
    try:
        record_use(key, remote_addr)
    except Exception as exc:
        # Bookkeeping only: a failed last-used write must not refuse a valid request.
        logger.warning("could not record use of key %s: %s", key.prefix, type(exc).__name__)
