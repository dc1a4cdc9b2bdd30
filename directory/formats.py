"""How stored values are written as FHIR text, for every layer (storage, admin, the API)."""

from __future__ import annotations

from datetime import UTC, datetime


def instant(moment: datetime) -> str:
    """A FHIR instant in UTC with a `Z` suffix (meta.lastUpdated, Bundle times)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
