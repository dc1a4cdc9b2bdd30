"""String parameters: folded prefix, `:contains` and `:exact` matches on StringIndex."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q, QuerySet

from ...models import StringIndex
from ...normalize import clip, fold
from ...searchparams import SearchParam
from ..plan import Plan
from ..values import any_of, or_values, unescape
from .base import IndexKind, IndexRows, IndexTable, Row, extension_value, semi_join, semi_joined

HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
_PARTS = {"HumanName": HUMAN_NAME_PARTS, "Address": ADDRESS_PARTS}
# The folded text (what searches compare) and the text as written (`:exact`).
STRINGS = IndexTable(StringIndex, ("value", "exact"))


def strings_of(type_name: str | None, element: Any) -> list[str]:
    """The texts a string parameter finds in an element of this type."""
    if isinstance(element, str):
        return [element]
    value = extension_value(type_name, element)
    if value is not None:
        return strings_of(*value)
    parts = _PARTS.get(type_name or "")
    if parts is None or not isinstance(element, dict):
        return []
    texts: list[str] = []
    for part in parts:
        found = element.get(part)
        if isinstance(found, list):
            texts.extend(v for v in found if isinstance(v, str))
        elif isinstance(found, str):
            texts.append(found)
    return texts


def text_rows(name: str, texts: Iterable[str]) -> Iterator[Row]:
    for text in texts:
        if text.strip():
            yield STRINGS, name, (fold(text), clip(text))


class StringKind(IndexKind):
    tables = (STRINGS,)
    modifiers = frozenset({"exact", "contains", "missing"})

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        yield from text_rows(param.name, strings_of(type_name, element))

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        return text_condition(self.index_rows(plan, param.name), modifier, value)


# A LIMIT no search reaches: it only keeps PostgreSQL from merging the subquery into the search.
UNBOUNDED = 2**62


def text_condition(rows: IndexRows, modifier: str, value: str) -> Q:
    """Folded prefix by default; `:contains` anywhere; `:exact` the text as written."""
    matches = rows.filter(any_of(_match(modifier, unescape(v)) for v in or_values(value)))
    if modifier != "contains":
        return semi_join(matches)
    # Merged into the search, `LIKE '%x%'` is planned as a walk of every string row in id order
    # until a page of matches turns up (1.45 million rows, 315 ms, on 244k practitioners);
    # planned on its own, all its matches come from the trigram index (migration 0024). On
    # PostgreSQL a first page is looked for by walking the type first (search/probes.py).
    return Q(pk__in=matches.values("resource_id").queryset()[:UNBOUNDED])


def substring_rows(condition: Q) -> QuerySet | None:
    """The index rows of a `:contains` condition as `text_condition` writes it, without the
    LIMIT that keeps it planned on its own; None for any other condition."""
    rows = semi_joined(condition, StringIndex)
    if rows is None or rows.query.low_mark != 0 or rows.query.high_mark != UNBOUNDED:
        return None
    unbounded = rows.all()
    unbounded.query.clear_limits()
    return unbounded


def _match(modifier: str, text: str) -> Q:
    if modifier == "exact":
        return Q(exact=text)
    if modifier == "contains":
        return Q(value__contains=fold(text))
    return Q(value__startswith=fold(text))
