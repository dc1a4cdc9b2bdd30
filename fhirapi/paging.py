"""Opaque, signed keyset cursors for history paging, and the `_count` / `_since` parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time

from django.conf import settings
from django.core import signing
from django.utils.dateparse import parse_date, parse_datetime

from directory import storage
from directory.cursors import has_fields, integer, matching, read_signed
from directory.errors import InvalidRequest
from directory.numbers import MAX_BIGINT, capped_integer
from directory.registry import ID_REGEX
from directory.search.dates import MAX_UTC_OFFSET

CURSOR_PARAM = "_cursor"
_SALT = "fhirapi.history.cursor"
# A history cursor: which history (HistoryScope.key) and the version id its page starts below.
CURSOR_FIELDS = {
    "s": matching(re.compile(rf"(?:[A-Za-z]{{1,64}})?/(?:{ID_REGEX})?")),
    "b": integer(0, MAX_BIGINT),
}


@dataclass(frozen=True)
class HistoryScope:
    """Which history is paged: system, one type, or one resource."""

    resource_type: str | None = None
    logical_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.resource_type or ''}/{self.logical_id or ''}"


def parse_count(raw: str | None) -> int:
    """`_count` as an int, defaulted and capped at FHIR_MAX_COUNT."""
    if raw is None or raw == "":
        return settings.FHIR_DEFAULT_COUNT
    count = capped_integer(raw, settings.FHIR_MAX_COUNT)
    if count is None:
        raise InvalidRequest(
            f"_count must be a non-negative integer, not '{raw[:40]}'", expression=["_count"]
        )
    return count


def parse_since(raw: str | None) -> datetime | None:
    """`_since` as an aware datetime; a bare date means its midnight UTC."""
    if raw is None:
        return None
    text = raw.strip().replace(" ", "+")  # an unescaped '+' in a query string becomes a space
    try:
        # A bare date must be tried first: parse_datetime reads it as a naive midnight.
        day = parse_date(text)
        moment = None if day else parse_datetime(text)
    except ValueError:
        moment = day = None
    if day is not None:
        return datetime.combine(day, time.min, tzinfo=UTC)
    if moment is not None and moment.tzinfo is not None and not _representable_in_utc(moment):
        moment = None
    offset = moment.utcoffset() if moment is not None else None
    if moment is None or offset is None or abs(offset) > MAX_UTC_OFFSET:
        raise InvalidRequest(
            f"_since must be a FHIR instant such as 2024-01-31T12:00:00Z, not '{raw[:40]}'",
            expression=["_since"],
        )
    return moment


def _representable_in_utc(moment: datetime) -> bool:
    """9999-12-31T23:59:59-05:00 is a valid instant whose UTC form has no year 10000."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def make_cursor(scope: HistoryScope, before: int) -> str:
    return signing.dumps({"s": scope.key, "b": before}, salt=_SALT, compress=True)


def read_cursor(scope: HistoryScope, token: str | None) -> int | None:
    """The keyset position in a cursor made by `make_cursor` for this same scope."""
    if not token:
        return None
    data = read_signed(token, _SALT)
    if data is None or not has_fields(data, CURSOR_FIELDS):
        raise InvalidRequest("The paging cursor is invalid", expression=[CURSOR_PARAM])
    if data["s"] != scope.key:
        raise InvalidRequest(
            "The paging cursor belongs to another history", expression=[CURSOR_PARAM]
        )
    return data["b"]


def previous_before(
    scope: HistoryScope, since: datetime | None, before: int, count: int
) -> int | None:
    """Keyset position of the page newer than the one starting below `before`, or None."""
    return storage.history_previous_before(
        resource_type=scope.resource_type,
        logical_id=scope.logical_id,
        since=since,
        before=before,
        count=count,
    )
