"""Database outages: which errors mean "the database cannot answer now", and when to come back.

A check or a write that cannot reach the database has not failed on its merits. The client is
told to try again (503 with Retry-After), never that its credentials were refused (401/403) nor
that the server broke (500). The security checks and the API's error handler both ask here.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError
from psycopg.errors import QueryCanceled

# The DB-API's errors about the database's operation rather than the statement: connection lost or
# refused, server shutting down or starting up, deadlock and serialization failures. Django wraps
# the driver's errors in its own classes; the driver's are listed for code that calls it directly.
UNAVAILABLE_ERRORS = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def is_database_unavailable(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is such an error.

    A statement cancelled by statement_timeout is not: the database answered, the request was
    too costly, and fhirapi.timeouts answers it as a timeout.
    """
    chain = list(_chain(error))
    if any(isinstance(cause, QueryCanceled) for cause in chain):
        return False
    return any(isinstance(cause, UNAVAILABLE_ERRORS) for cause in chain)


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        yield error
        seen.add(id(error))
        error = error.__cause__ or error.__context__


def retry_after() -> str:
    """The Retry-After header value, in seconds, for every 503 this service answers."""
    return str(settings.RETRY_AFTER_SECONDS)
