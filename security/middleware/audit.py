"""One RequestAudit row per API request, refused or served, holding no secret.

Placed right after SecurityHeadersMiddleware so every check's refusal passes back through it.

Durability: on PostgreSQL the row commits without waiting for its WAL flush (synchronous_commit
off for that one statement's transaction; see `write_audit`). The row is committed before the
response leaves, so a worker that dies afterwards loses nothing. A PostgreSQL crash (or the
host's) can lose the audit rows committed in the last moments before it: up to three times
wal_writer_delay, 600 ms with the default settings. Data writes are unaffected: they commit in
their own transactions with the server's setting, and each flush also carries every audit row
committed before it.

Failure policy: if the row cannot be written the response still goes out (fail open) and the
would-be row is logged at ERROR with the same non-secret fields. The directory serves
practitioner contact data whose availability matters more than a row that the log keeps anyway;
by the time the row is written the interaction has already happened, so refusing the response
could not undo a write either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import cast

from django.db import connections, router
from django.db.models import Field
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from ..context import SecurityContext, context_of
from ..models import RequestAudit
from ..paths import is_api, is_oauth, is_public
from ..redaction import redact_recurring

logger = logging.getLogger("security.audit")

TEXT_FIELDS = [
    field.name
    for field in RequestAudit._meta.concrete_fields
    if field.get_internal_type() in ("CharField", "TextField")
]


class AuditMiddleware:
    """Times each API request and records who asked for what, and how it ended."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_public(request) or not (is_api(request) or is_oauth(request)):
            return self.get_response(request)
        context = context_of(request)
        started_at, started = timezone.now(), time.monotonic()
        response = self.get_response(request)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        write_audit(audit_row(request, context, response.status_code, started_at, elapsed_ms))
        return response


def audit_row(
    request: HttpRequest, context: SecurityContext, status: int, at: datetime, elapsed_ms: int
) -> RequestAudit:
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
        method=request.method or "",
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
        value = redact_recurring(getattr(row, name) or "")
        field = cast(Field, RequestAudit._meta.get_field(name))  # a text column, not a relation
        setattr(row, name, value[: field.max_length])


def write_audit(row: RequestAudit) -> None:
    """One INSERT; a failure is logged with the row's content and never breaks the response."""
    try:
        _insert(row)
    except Exception:
        # Any failure, not only the database's: a bad value must not cost the client its answer.
        logger.exception("Audit record not written: %s", _describe(row))


def _insert(row: RequestAudit) -> None:
    using = router.db_for_write(RequestAudit)
    connection = connections[using]
    # Inside a transaction a transaction-local setting would relax the enclosing writes too.
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        row.save(force_insert=True, using=using)
        return
    # Waiting for the WAL flush of every audit row was a quarter of a read's time (issue 10).
    # One statement, one round trip: set_config(..., true) holds for this statement's own
    # transaction, and the commit reads the setting before it is reset.
    values = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in _columns()]
    with connection.cursor() as cursor:
        cursor.execute(_relaxed_insert(), values)


@cache
def _columns() -> list:
    return [f for f in RequestAudit._meta.concrete_fields if not f.primary_key]


@cache
def _relaxed_insert() -> str:
    """The INSERT for PostgreSQL (the only database this is used on; hence its quoting)."""
    table = f'"{RequestAudit._meta.db_table}"'
    columns = ", ".join(f'"{f.column}"' for f in _columns())
    values = ", ".join(["%s"] * len(_columns()))
    # Names come from the model, values are parameters: no request text in the statement.
    return (
        f"INSERT INTO {table} ({columns}) SELECT {values}"  # noqa: S608
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed"
    )


def _describe(row: RequestAudit) -> str:
    fields = (f.attname for f in RequestAudit._meta.concrete_fields if f.attname != "id")
    return " ".join(f"{name}={getattr(row, name)!s}" for name in fields)
