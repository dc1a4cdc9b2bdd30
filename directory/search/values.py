"""Search value syntax: backslash escapes and comma-separated alternatives, which are OR-ed."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db.models import Q


def split(value: str, separator: str) -> list[str]:
    """Split on `separator` where it is not escaped by a backslash; escapes stay in the parts."""
    parts, start, i = [], 0, 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == separator:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def or_values(value: str) -> list[str]:
    """The comma-separated alternatives of one parameter value, escapes still in place."""
    return [part for part in split(value, ",") if part != ""]


def nothing() -> Q:
    """A condition no row meets: the OR of no alternatives."""
    return Q(pk__in=[])


def any_of(conditions: Iterable[Q]) -> Q:
    combined = nothing()
    for condition in conditions:
        combined |= condition
    return combined
