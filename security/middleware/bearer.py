"""Check 'bearer token': an `Authorization: Bearer <JWT>` signed by a configured issuer."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from ..context import SecurityContext
from ..refusal import Refusal
from ..tokens import is_builtin, verify_token
from ..trust.certificates import x5t_s256
from .base import CheckMiddleware

# Cut to the audit columns (RequestAudit.token_subject / token_issuer) so a long claim can't
# make the audit write fail.
SUBJECT_MAX, ISSUER_MAX = 200, 300


def bearer_token_of(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer ...` header; None when there is none."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class BearerTokenMiddleware(CheckMiddleware):
    """Verifies the bearer token and records its claims; the token itself is never logged."""

    # Clients must be able to read the CapabilityStatement to learn how to get a token.
    applies_to_metadata = False

    def check(self, request: HttpRequest, context: SecurityContext) -> None:
        raw = bearer_token_of(request)
        if raw is None:
            if settings.SECURITY_REQUIRE_BEARER:
                raise Refusal("token-missing")
            return
        # A token sent even where none is required must be valid: its scopes will be applied.
        claims = verify_token(raw)
        check_binding(claims, context)
        context.token_claims = claims
        context.token_subject = str(claims.get("sub", ""))[:SUBJECT_MAX]
        context.token_issuer = str(claims["iss"])[:ISSUER_MAX]


def check_binding(claims: dict, context: SecurityContext) -> None:
    """RFC 8705: a certificate-bound token is accepted only with the certificate it is bound to.

    A token of the built-in server without `cnf` is refused whenever a certificate is presented:
    the server binds every token requested over mutual TLS, so an unbound one was issued to a
    request without a certificate and must not be usable from behind someone's certificate.
    External issuers' tokens without `cnf` keep working (their servers may not bind tokens).
    """
    cnf = claims.get("cnf")
    if cnf is None:
        if context.certificate is not None and is_builtin(claims):
            raise Refusal("token-invalid")
        return
    bound = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if not isinstance(bound, str) or context.certificate is None:
        raise Refusal("token-invalid")
    if bound != x5t_s256(context.certificate):
        raise Refusal("token-invalid")
