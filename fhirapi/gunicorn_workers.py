"""gunicorn workers whose own refusals are FHIR OperationOutcomes (`worker_class`).

gunicorn answers a request it cannot parse (a bad request line, too many or too long header
fields, an unknown transfer coding) itself, before the app sees it, with an HTML page that
echoes what it could not parse. These workers answer such requests, and any error gunicorn
catches around the app, with an OperationOutcome marked no-store, as the app and nginx do.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from ssl import SSLError
from typing import Any

from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

# Checked in order, first match wins: (exceptions, status, reason, issue code, diagnostics).
# The diagnostics never repeat the request: it may carry the key parameter.
REFUSALS: tuple[tuple[tuple[type[BaseException], ...], int, str, str, str], ...] = (
    (
        (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName),
        500,
        "Internal Server Error",
        "exception",
        "The server could not process the request because of an internal error.",
    ),
    (
        (errors.ConfigurationProblem,),
        500,
        "Internal Server Error",
        "exception",
        "The server could not process the request because of an internal error.",
    ),
    ((errors.LimitRequestLine,), 414, "URI Too Long", "too-long", "The request line is too long."),
    (
        (errors.LimitRequestHeaders,),
        431,
        "Request Header Fields Too Large",
        "too-long",
        "The request has too many header fields, or one too large.",
    ),
    (
        (errors.UnsupportedTransferCoding,),
        501,
        "Not Implemented",
        "not-supported",
        "The transfer coding of the request is not supported.",
    ),
    (
        (errors.ExpectationFailed,),
        417,
        "Expectation Failed",
        "not-supported",
        "The expectation of the request cannot be met.",
    ),
    (
        (errors.ForbiddenProxyRequest, SSLError),
        403,
        "Forbidden",
        "forbidden",
        "The request was refused.",
    ),
    (
        (errors.ParseException,),
        400,
        "Bad Request",
        "invalid",
        "The request could not be read.",
    ),
)
UNEXPECTED = REFUSALS[0][1:]


def refusal_for(exc: BaseException) -> tuple[int, str, str, str]:
    """(status, reason, issue code, diagnostics) of the answer to a request that raised `exc`."""
    for kinds, status, reason, code, diagnostics in REFUSALS:
        if isinstance(exc, kinds):
            return status, reason, code, diagnostics
    return UNEXPECTED


def outcome_response(status: int, reason: str, code: str, diagnostics: str) -> bytes:
    """A complete HTTP/1.1 response, closing the connection, whose body is an OperationOutcome."""
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    body = json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/fhir+json; charset=utf-8\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class OutcomeErrors:
    """Replaces gunicorn's HTML error pages; logging and the access log entry stay as they were."""

    # Set by the gunicorn worker this mixes into (gunicorn ships no type information).
    log: Any
    cfg: Any

    def handle_error(
        self, req: Any, client: socket.socket, addr: tuple[str, int] | None, exc: BaseException
    ) -> None:
        started = datetime.now()
        addr = addr or ("", -1)  # a unix socket has no peer address
        status, reason, code, diagnostics = refusal_for(exc)
        if status >= 500:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
        else:
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
        answer = outcome_response(status, reason, code, diagnostics)
        if req is None and isinstance(exc, (errors.InvalidHeader, errors.InvalidHeaderName)):
            req = getattr(exc, "req", None)  # the request so far, for the access log
        if req is not None:
            self._log_access(req, client, addr, f"{status} {reason}", len(answer), started)
        try:
            util.write_nonblock(client, answer)
        except Exception:
            self.log.debug("Failed to send error message.")

    def _log_access(
        self,
        req: Any,
        client: socket.socket,
        addr: tuple[str, int],
        status: str,
        length: int,
        started: datetime,
    ) -> None:
        environ = default_environ(req, client, self.cfg)
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
        response = Response(req, client, self.cfg)
        response.status = status
        response.response_length = length
        self.log.access(response, req, environ, datetime.now() - started)


class OutcomeSyncWorker(OutcomeErrors, SyncWorker):
    """gunicorn's sync worker (the default) with OperationOutcome refusals."""


class OutcomeThreadWorker(OutcomeErrors, ThreadWorker):
    """gunicorn's threaded worker with OperationOutcome refusals: it keeps HTTP/1.1 connections
    alive (the sync worker closes each one), so nginx's upstream keep-alive can reuse them."""
