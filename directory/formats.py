"""How stored values are written as FHIR text, for every layer (storage, admin, the API)."""

from __future__ import annotations

from datetime import UTC, datetime


def instant(moment: datetime) -> str:
    """A FHIR instant in UTC with a `Z` suffix (meta.lastUpdated, Bundle times)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def etag(version_id: int) -> str:
    """A weak ETag naming one version: the HTTP header and `Bundle.entry.response.etag`.

    If-Match on updates takes it back (see storage.update).
    """
    return f'W/"{version_id}"'
