"""HTTP header values the API derives from stored versions."""

from __future__ import annotations


def etag(version_id: int) -> str:
    """A weak ETag naming one version (If-Match on updates takes it back, see storage.update)."""
    return f'W/"{version_id}"'
