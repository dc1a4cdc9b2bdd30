"""FHIR date values: a search value's prefix and interval, and the interval a stored date covers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone

from django.db.models import Q

from ..errors import InvalidRequest

_DATE = re.compile(
    r"^(?P<prefix>[a-z]{2})?(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+\- ]\d{2}:\d{2})?)?)?)?$"
)
# FHIR offsets run from -14:00 to +14:00. PostgreSQL refuses an offset beyond ±15:59 with a
# database error, so a larger one must be refused here as bad input.
MAX_UTC_OFFSET = timedelta(hours=14)
# Each supported prefix, as a condition on the [start, end) interval the value denotes.
_PREFIX_CONDITIONS = {
    "eq": lambda start, end: Q(last_updated__gte=start, last_updated__lt=end),
    "ne": lambda start, end: Q(last_updated__lt=start) | Q(last_updated__gte=end),
    "lt": lambda start, end: Q(last_updated__lt=start),
    "eb": lambda start, end: Q(last_updated__lt=start),
    "le": lambda start, end: Q(last_updated__lt=end),
    "gt": lambda start, end: Q(last_updated__gte=end),
    "sa": lambda start, end: Q(last_updated__gte=end),
    "ge": lambda start, end: Q(last_updated__gte=start),
}


def last_updated_condition(raw_name: str, text: str) -> Q:
    prefix, start, end = date_range(raw_name, text)
    return _PREFIX_CONDITIONS[prefix](start, end)


def interval_of(text: str) -> tuple[datetime, datetime] | None:
    """The [start, end) a stored date, dateTime or instant covers; None when it is not one."""
    match = _DATE.match(text) if isinstance(text, str) else None
    if match is None or match.group("prefix"):
        return None
    try:
        return _utc_interval(match.groupdict())
    except (ValueError, OverflowError):
        return None


def date_range(
    raw_name: str, text: str, approximate: bool = False
) -> tuple[str, datetime, datetime]:
    """The prefix and the [start, end) interval a partial date or dateTime denotes.

    `ap` is accepted only where the caller can evaluate it (`approximate`).
    """
    match = _DATE.match(text)
    if not match:
        raise InvalidRequest(
            f"'{raw_name}' value '{text}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)",
            expression=[raw_name],
        )
    parts = match.groupdict()
    prefix = parts["prefix"] or "eq"
    if prefix not in _PREFIX_CONDITIONS and not (approximate and prefix == "ap"):
        raise InvalidRequest(
            f"'{raw_name}' has unsupported prefix '{prefix}'; use eq, ne, lt, le, gt, ge, sa or eb"
            + (" or ap" if approximate else ""),
            expression=[raw_name],
        )
    try:
        start, end = _utc_interval(parts)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"'{raw_name}' value '{text}' is not a valid date") from None
    return prefix, start, end


def _utc_interval(parts: dict) -> tuple[datetime, datetime]:
    """The interval in UTC: an instant outside years 1-9999 fails here, not in the database."""
    start, end = _interval(parts)
    return start.astimezone(UTC), end.astimezone(UTC)


def _interval(parts: dict) -> tuple[datetime, datetime]:
    zone = _zone(parts["tz"])
    year = int(parts["year"])
    if parts["month"] is None:
        return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    month = int(parts["month"])
    if parts["day"] is None:
        start = datetime(year, month, 1, tzinfo=zone)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        return start, following
    day = int(parts["day"])
    if parts["hour"] is None:
        start = datetime(year, month, day, tzinfo=zone)
        return start, start + timedelta(days=1)
    fraction = (parts["fraction"] or "")[:6]
    start = datetime(
        year,
        month,
        day,
        int(parts["hour"]),
        int(parts["minute"]),
        int(parts["second"] or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
        tzinfo=zone,
    )
    if parts["second"] is None:
        return start, start + timedelta(minutes=1)
    if not fraction:
        return start, start + timedelta(seconds=1)
    return start, start + timedelta(microseconds=10 ** (6 - len(fraction)))


def _zone(text: str | None) -> tzinfo:
    """UTC when absent; a space stands for '+' that form decoding turned into a blank."""
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    offset = sign * timedelta(hours=hours, minutes=minutes)
    if minutes > 59 or abs(offset) > MAX_UTC_OFFSET:
        raise ValueError(f"UTC offset {text} is out of range")
    return dt_timezone(offset)
