"""Database settings the directory's search plans depend on, as Django system checks.

Registered with the `database` tag, so `manage.py check --database default` (and `migrate`)
report them; a warning, not an error: the service answers correctly either way, only slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import DatabaseError, connections


@checks.register(checks.Tags.database)
def check_autovacuum(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """Without autovacuum, writes after a load leave the planner's statistics behind."""
    found: list[checks.CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW autovacuum")
                setting = cursor.fetchone()[0]
        except DatabaseError:
            continue  # an unreachable database is the connection checks' to report
        if setting != "on":
            found.append(
                checks.Warning(
                    f"autovacuum is off on database '{alias}'",
                    hint=(
                        "Search plans need fresh statistics: turn autovacuum on, or run "
                        "ANALYZE after heavy writes (bulk loads run it themselves)."
                    ),
                    id="directory.W001",
                )
            )
    return found
