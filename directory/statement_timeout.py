"""Lifting PostgreSQL's statement timeout for work that legitimately runs long.

Settings give every PostgreSQL connection `statement_timeout` (FHIR_STATEMENT_TIMEOUT_MS) so one
costly request cannot hold a worker. Bulk loads and migrations (index builds over millions of
rows) are not requests: they lift it for every connection of their own process, including ones
opened later and by forked loader processes.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import connections

_TIMEOUT_OPTION = re.compile(r"\s*-c\s*statement_timeout=\S+")


def lift_statement_timeout(**_signal_kwargs: Any) -> None:
    """No statement timeout on this process's PostgreSQL connections, open or yet to open."""
    for connection in connections.all():
        if connection.vendor != "postgresql":
            continue
        options = connection.settings_dict.setdefault("OPTIONS", {})
        if "options" in options:
            options["options"] = _TIMEOUT_OPTION.sub("", options["options"]).strip()
        if connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")
