"""POST /oauth/token: the client-credentials grant with private_key_jwt (SMART Backend Services).

The client proves itself twice: its mutual-TLS certificate, verified exactly as on /fhir (same
trusted-proxy header, chain, CRL and identity checks), and the assertion signed with its
registered key. No API key and no bearer token are asked for: the assertion is a proof of
possession that replaces a shared secret, and a bearer token is what the client came to get.
When both identify a client they must identify the same one.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from ..context import SecurityContext
from ..middleware.client_certificate import establish_client
from ..refusal import Refusal
from ..scopes import grantable_scopes
from . import config, issuance, signing
from .assertions import verify_assertion
from .errors import OAuthError

FORM = "application/x-www-form-urlencoded"


def token_response(request: HttpRequest, context: SecurityContext) -> dict:
    """The token response body for a valid request; OAuthError otherwise."""
    form = _form(request)
    _check_grant(form)
    _check_transport(request, context)
    client, _ = verify_assertion(form["client_assertion"])
    if context.client is not None and context.client.pk != client.pk:
        raise OAuthError("invalid_client", "certificate and assertion name different clients")
    context.client = client
    scopes = grantable_scopes(form.get("scope", "").split(), client.scope_set)
    if not scopes:
        raise OAuthError("invalid_scope", "no requested scope is allowed for the client")
    try:
        return issuance.issue(client, scopes, context.certificate)
    except signing.SigningKeyUnavailable:
        raise OAuthError("temporarily_unavailable", "no usable signing key") from None


def _form(request: HttpRequest) -> dict[str, str]:
    content_type = request.content_type or ""
    if content_type.lower() != FORM:
        raise OAuthError("invalid_request", f"content type {content_type!r}")
    form = {}
    for name, values in request.POST.lists():
        if len(values) != 1:  # RFC 6749 §3.2: parameters must not be repeated
            raise OAuthError("invalid_request", f"parameter {name} repeated")
        form[name] = values[0]
    return form


def _check_grant(form: dict[str, str]) -> None:
    for name in ("grant_type", "client_assertion_type", "client_assertion", "scope"):
        if not form.get(name):
            raise OAuthError("invalid_request", f"{name} missing")
    if form["grant_type"] != config.CLIENT_CREDENTIALS:
        raise OAuthError("unsupported_grant_type", "only client_credentials")
    if form["client_assertion_type"] != config.ASSERTION_TYPE:
        raise OAuthError("invalid_client", "client_assertion_type is not jwt-bearer")


def _check_transport(request: HttpRequest, context: SecurityContext) -> None:
    if not context.from_trusted_proxy and settings.ENVIRONMENT != "dev":
        raise OAuthError("invalid_client", "request did not come through the TLS terminator")
    try:
        establish_client(request, context)
    except Refusal as refusal:
        context.outcome = refusal.reason.code
        if refusal.reason.code == "crl-unavailable":
            raise OAuthError("temporarily_unavailable", refusal.reason.code) from None
        raise OAuthError("invalid_client", refusal.reason.code) from None
