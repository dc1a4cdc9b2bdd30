"""Date parameters: each value an instant range [low, high) on DateIndex, FHIR's prefixes.

A stored date, dateTime or instant covers the range its precision implies (`2024` is the whole
year); a Period covers start to end, an open end reaching the earliest or latest instant. A search
value is a range too, and each prefix compares the two ranges as FHIR R4 defines (search 3.1.1.4).
Values without a time zone are read as UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ...models import DateIndex
from ...searchparams import SearchParam
from ..dates import date_range, interval_of
from ..plan import Plan
from ..values import any_of, or_values
from .base import IndexKind, IndexTable, Row, extension_value, semi_join

# The open ends of a range, within what every supported database stores.
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_DATE_TYPES = {"date", "dateTime", "instant"}
# `ap`: FHIR suggests 10% of the distance between now and the value, as the slack either side.
APPROXIMATE_SHARE = 0.1
DATES = IndexTable(DateIndex, ("low", "high"))


def range_of(type_name: str | None, element: Any) -> tuple[datetime, datetime] | None:
    """The [low, high) a date-like element covers; None when it holds no date."""
    value = extension_value(type_name, element)
    if value is not None:
        return range_of(*value)
    if type_name in _DATE_TYPES and isinstance(element, str):
        return interval_of(element)
    if type_name == "Period" and isinstance(element, dict):
        start_text, end_text = element.get("start"), element.get("end")
        start = interval_of(start_text) if start_text else None
        end = interval_of(end_text) if end_text else None
        if start is None and end is None:
            return None
        return (start[0] if start else EARLIEST), (end[1] if end else LATEST)
    return None


class DateKind(IndexKind):
    tables = (DATES,)

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        found = range_of(type_name, element)
        if found is not None:
            yield DATES, param.name, found

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        matches = any_of(_match(raw_name, v) for v in or_values(value))
        return semi_join(self.index_rows(plan, param.name).filter(matches))


def _match(raw_name: str, text: str) -> Q:
    prefix, start, end = date_range(raw_name, text, approximate=True)
    inside = Q(low__gte=start, high__lte=end)
    return {
        "eq": lambda: inside,
        "ne": lambda: Q(low__lt=start) | Q(high__gt=end),
        "gt": lambda: Q(high__gt=end),
        "lt": lambda: Q(low__lt=start),
        "ge": lambda: Q(high__gt=end) | inside,
        "le": lambda: Q(low__lt=start) | inside,
        "sa": lambda: Q(low__gte=end),
        "eb": lambda: Q(high__lte=start),
        "ap": lambda: _approximately(start, end),
    }[prefix]()


def _approximately(start: datetime, end: datetime) -> Q:
    """Ranges that overlap the search range widened by a share of its distance from now."""
    slack = max(abs(timezone.now() - start) * APPROXIMATE_SHARE, timedelta(days=1))
    return Q(low__lt=_shifted(end, slack), high__gt=_shifted(start, -slack))


def _shifted(moment: datetime, by: timedelta) -> datetime:
    """`moment + by`, held within the representable range (`ap0001` must not overflow)."""
    try:
        shifted = moment + by
    except OverflowError:
        shifted = LATEST if by > timedelta(0) else EARLIEST
    return min(max(shifted, EARLIEST), LATEST)
