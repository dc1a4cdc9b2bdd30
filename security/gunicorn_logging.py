"""gunicorn's access and error logs with credentials removed (`logger_class` in gunicorn.conf.py).

The request line carries the key query parameter and header atoms carry keys and tokens. Every
handler of both logs redacts the whole formatted line (RedactingFilter), so even a custom
access_log_format cannot write them; header atoms whose whole value is a credential (the key
header, Authorization, cookies), which no pattern in a line would recognise, are replaced by the
marker before formatting. Atoms the format does not name are dropped unread: redacting every one
(each request header, the client certificate among them) cost about a fifth of a read's CPU.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from functools import lru_cache
from typing import Any

from gunicorn.glogging import Logger

from .redaction import MARKER, RedactingFilter, secret_header_names

# Whole values that are credentials in any form, beyond the API key and Authorization headers.
ALWAYS_SECRET_ATOM_HEADERS = ("cookie", "set-cookie")


class RedactingGunicornLogger(Logger):
    """A gunicorn Logger whose access atoms and error records never carry a credential."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # After super(): handlers from a log config dict or file are attached by then too.
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                _add_redaction(handler)

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        secret_atoms = _secret_atom_names(secret_header_names())
        written = atoms_written(self.cfg.access_log_format)
        return {
            name: MARKER if name in secret_atoms else value
            for name, value in super().atoms(resp, req, environ, request_time).items()
            if name in written
        }


# A `%(name)s` mapping key of a %-format; `%%` is a literal percent sign, not a key.
_FORMAT_KEY = re.compile(r"%%|%\((?P<name>[^)]*)\)")


@lru_cache(maxsize=8)
def atoms_written(access_log_format: str) -> frozenset[str]:
    """The atom names a format reads, spelled as the atoms dict holds them: gunicorn's SafeAtoms
    looks `{header}` atoms up in lower case, so they are kept lower-cased here."""
    names = (match["name"] for match in _FORMAT_KEY.finditer(access_log_format) if match["name"])
    return frozenset(name.lower() if name.startswith("{") else name for name in names)


def _add_redaction(handler: logging.Handler) -> None:
    # setup() runs again on every configuration reload; one filter per handler is enough.
    if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
        handler.addFilter(RedactingFilter())


@lru_cache(maxsize=8)
def _secret_atom_names(secret_headers: tuple[str, ...]) -> frozenset[str]:
    """Atom names of credential headers: as request ({x}i), response ({x}o) and environ ({x}e)."""
    names = set()
    for header in (*secret_headers, *ALWAYS_SECRET_ATOM_HEADERS):
        environ_name = "http_" + header.replace("-", "_")
        names.update({f"{{{header}}}i", f"{{{header}}}o", f"{{{environ_name}}}e"})
    return frozenset(names)
