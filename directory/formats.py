"""FHIR instants and version ETags, written and read back the same way by every layer.

Storage, validation, the admin and subscriptions use them as the API does, so they live here, below
the API, rather than in fhirapi."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import InvalidRequest
from .numbers import bounded_integer

_ETAG = re.compile(r'^\s*(?:W/)?"?(?P<version>\d+)"?\s*$')


def instant(moment: datetime) -> str:
    """A FHIR instant in UTC with a `Z` suffix (meta.lastUpdated, Bundle times)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def etag(version_id: int) -> str:
    """A weak ETag naming one version: the HTTP header and `Bundle.entry.response.etag`.

    If-Match on updates takes it back (`expected_version`).
    """
    return f'W/"{version_id}"'


def expected_version(if_match: str) -> int:
    """The version an update's `if_match` expects: an ETag (`W/"3"`, as If-Match carries) or `3`."""
    match = _ETAG.match(if_match or "")
    version = bounded_integer(match.group("version")) if match else None
    if version is None:
        raise InvalidRequest('If-Match must be an ETag such as W/"3"')
    return version
