"""One RequestAudit row per API request, refused or served, holding no secret.

Placed right after SecurityHeadersMiddleware so every check's refusal passes back through it.

Failure policy: if the row cannot be written the response still goes out (fail open) and the
would-be row is logged at ERROR with the same non-secret fields. The directory serves
practitioner contact data whose availability matters more than a row that the log keeps anyway;
by the time the row is written the interaction has already happened, so refusing the response
could not undo a write either.
"""

from __future__ import annotations

import logging
import time

from django.utils import timezone

from ..context import SecurityContext, context_of
from ..models import RequestAudit
from ..paths import is_api, is_oauth, is_public
from ..redaction import redact

logger = logging.getLogger("security.audit")

TEXT_FIELDS = [
    field.name
    for field in RequestAudit._meta.concrete_fields
    if field.get_internal_type() in ("CharField", "TextField")
]


class AuditMiddleware:
    """Times each API request and records who asked for what, and how it ended."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_public(request) or not (is_api(request) or is_oauth(request)):
            return self.get_response(request)
        context = context_of(request)
        started_at, started = timezone.now(), time.monotonic()
        response = self.get_response(request)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        write_audit(audit_row(request, context, response.status_code, started_at, elapsed_ms))
        return response


def audit_row(request, context: SecurityContext, status: int, at, elapsed_ms: int):
    """The unsaved record; every text is redacted and cut to its column."""
    row = RequestAudit(
        time=at,
        client_id=context.client.pk if context.client else None,
        client_name=context.client.name if context.client else "",
        remote_addr=context.remote_addr,
        certificate_fingerprint=context.certificate_fingerprint,
        certificate_subject=context.certificate_subject,
        key_prefix=context.key_prefix,
        token_subject=context.token_subject,
        token_issuer=context.token_issuer,
        method=request.method,
        # path, not the full path: the query string may carry the key parameter.
        path=request.path,
        # Named by the API's view from its route; empty when a check refused before routing.
        interaction=context.interaction,
        resource_type=context.resource_type,
        resource_id=context.resource_id,
        status=status,
        outcome=context.outcome or "ok",
        decision="; ".join(context.decisions),
        duration_ms=elapsed_ms,
    )
    _make_safe(row)
    return row


def _make_safe(row: RequestAudit) -> None:
    # Redacted even where no secret is expected: a client can put anything in a path or claim.
    for name in TEXT_FIELDS:
        value = redact(getattr(row, name) or "")
        setattr(row, name, value[: RequestAudit._meta.get_field(name).max_length])


def write_audit(row: RequestAudit) -> None:
    """One INSERT; a failure is logged with the row's content and never breaks the response."""
    try:
        row.save(force_insert=True)
    except Exception:
        # Any failure, not only the database's: a bad value must not cost the client its answer.
        logger.exception("Audit record not written: %s", _describe(row))


def _describe(row: RequestAudit) -> str:
    fields = (f.attname for f in RequestAudit._meta.concrete_fields if f.attname != "id")
    return " ".join(f"{name}={getattr(row, name)!s}" for name in fields)
