"""Responses for a single stored resource: headers from its version, body from Prefer."""

from __future__ import annotations

from datetime import datetime

from django.utils.http import http_date
from rest_framework.response import Response

from directory.formats import etag
from directory.models import Resource, ResourceVersion

from .exceptions import outcome
from .links import version_url
from .prefer import Preferences
from .renderers import RawJSON


def version_headers(version_id: int, last_updated: datetime) -> dict[str, str]:
    return {
        "ETag": etag(version_id),
        "Last-Modified": http_date(last_updated.timestamp()),
    }


def resource_response(row: Resource | ResourceVersion, *, status: int = 200) -> Response:
    """A stored resource (current or historic version) as the response body."""
    headers = version_headers(row.version_id, row.last_updated)
    return Response(RawJSON(row.content), status=status, headers=headers)


def write_response(
    base: str, row: Resource, *, status: int, prefer: Preferences, message: str
) -> Response:
    """The answer to create/update: Location, ETag, Last-Modified, body chosen by Prefer."""
    headers = version_headers(row.version_id, row.last_updated)
    headers["Location"] = version_url(base, row.resource_type, row.logical_id, row.version_id)
    if prefer.return_ == "minimal":
        body: object = None
    elif prefer.return_ == "OperationOutcome":
        body = outcome("information", "informational", message)
    else:
        body = RawJSON(row.content)
    return Response(body, status=status, headers=headers)
