"""A statement the database cancelled for running too long, answered as a clean 503.

PostgreSQL's statement_timeout (FHIR_STATEMENT_TIMEOUT_MS) stops one costly search from holding a
worker and a database backend. The client gets 503 with Retry-After rather than a 4xx: the same
search may well finish when the database is less busy, and nothing about the request was wrong.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from directory.errors import FHIRError

E = TypeVar("E", bound=BaseException)

logger = logging.getLogger(__name__)

# SQLSTATE query_canceled: raised for statement_timeout (and for an explicit cancel).
QUERY_CANCELED = "57014"
RETRY_AFTER_SECONDS = 10


class StatementTimedOut(FHIRError):
    status = 503
    code = "timeout"

    def __init__(self) -> None:
        super().__init__(
            "The request took too long to process and was stopped; narrow the search or try "
            "again later"
        )
        self.retry_after = RETRY_AFTER_SECONDS


def as_timeout(exc: E) -> E | StatementTimedOut:
    """StatementTimedOut for a database error caused by a cancelled statement, else `exc`."""
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, "sqlstate", None) == QUERY_CANCELED:
            logger.warning("statement cancelled after FHIR_STATEMENT_TIMEOUT_MS: %s", cause)
            return StatementTimedOut()
        cause = cause.__cause__
    return exc
