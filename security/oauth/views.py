"""HTTP views of the authorization server. All answer 404 while OAUTH_SERVER_URL is unset."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from common.outage import UNAVAILABLE_ERRORS

from ..context import context_of
from . import config, discovery, registration, signing
from .errors import OAuthError, error_response, json_response
from .token_endpoint import token_response

log = logging.getLogger(__name__)

MAX_REGISTRATION_BODY = 64 * 1024
# A database that cannot answer has judged no one: try again later, as the API's checks say.
DATABASE_DOWN = OAuthError("temporarily_unavailable", "database-unavailable")


def _enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not config.enabled():
            raise Http404
        return view(request, *args, **kwargs)

    guarded.__name__ = view.__name__
    guarded.__doc__ = view.__doc__
    return guarded


def _refused(request: HttpRequest, error: OAuthError) -> JsonResponse:
    """The error response; the precise reason only in the audit record."""
    context = context_of(request)
    if context.outcome == "ok":
        context.outcome = error.error
    context.decisions.append(error.reason)
    log.info("%s refused: %s (%s)", request.path, error.error, error.reason)
    return error_response(error)


@csrf_exempt  # a machine-to-machine endpoint: no cookies, no browser session
@_enabled
@require_POST
def token(request: HttpRequest) -> JsonResponse:
    context = context_of(request)
    try:
        body = token_response(request, context)
    except OAuthError as error:
        return _refused(request, error)
    except UNAVAILABLE_ERRORS:
        return _refused(request, DATABASE_DOWN)
    context.decisions.append(f"token issued: {body['scope']}")
    return json_response(body)


@csrf_exempt
@_enabled
@require_POST
def register(request: HttpRequest) -> JsonResponse:
    context = context_of(request)
    try:
        done = registration.register(_json_body(request))
    except OAuthError as error:
        return _refused(request, error)
    except UNAVAILABLE_ERRORS:
        return _refused(request, DATABASE_DOWN)
    context.client = done.client
    context.decisions.append(f"{'registered' if done.created else 're-registered'}: {done.scope}")
    return json_response(_registration_body(request, done), 201 if done.created else 200)


def _json_body(request: HttpRequest) -> Any:
    if (request.content_type or "").lower() != "application/json":
        raise OAuthError("invalid_client_metadata", "content type is not application/json")
    if len(request.body) > MAX_REGISTRATION_BODY:
        raise OAuthError("invalid_client_metadata", "body too large")
    try:
        return json.loads(request.body)
    except ValueError:
        raise OAuthError("invalid_client_metadata", "body is not JSON") from None


def _registration_body(request: HttpRequest, done: registration.Registration) -> dict:
    body = json.loads(request.body)
    client = done.client
    answer = {
        "client_id": client.oauth_client_id,
        "software_statement": body["software_statement"],
        "client_name": client.name,
        "grant_types": [config.CLIENT_CREDENTIALS],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": done.scope,
        "jwks": json.loads(client.jwks),
    }
    if done.api_key:
        # The directory API also wants the client's API key; shown this once, like issuekey.
        answer["api_key"] = done.api_key
    return answer


@_enabled
@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(signing.jwks_document())
    # Short, so a rotation reaches verifiers that cache the document well within the overlap.
    response["Cache-Control"] = "public, max-age=60"
    return response


@_enabled
@require_GET
def smart_configuration(request: HttpRequest) -> JsonResponse:
    return JsonResponse(discovery.smart_configuration())


@_enabled
@require_GET
def udap(request: HttpRequest) -> JsonResponse:
    if not discovery.udap_configured():
        raise Http404
    return JsonResponse(discovery.udap_metadata())
