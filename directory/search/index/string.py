"""String parameters: folded prefix, `:contains` and `:exact` matches on StringIndex."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Q

from ...models import StringIndex
from ...normalize import clip, fold
from ..values import any_of, or_values, unescape
from .base import IndexKind, Row, extension_value, semi_join

HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
_PARTS = {"HumanName": HUMAN_NAME_PARTS, "Address": ADDRESS_PARTS}


def strings_of(type_name: str | None, element) -> list[str]:
    """The texts a string parameter finds in an element of this type."""
    if isinstance(element, str):
        return [element]
    value = extension_value(type_name, element)
    if value is not None:
        return strings_of(*value)
    parts = _PARTS.get(type_name or "")
    if parts is None or not isinstance(element, dict):
        return []
    texts = []
    for part in parts:
        found = element.get(part)
        if isinstance(found, list):
            texts.extend(v for v in found if isinstance(v, str))
        elif isinstance(found, str):
            texts.append(found)
    return texts


def text_rows(name: str, texts) -> Iterator[Row]:
    for text in texts:
        if text.strip():
            yield StringIndex, name, (fold(text), clip(text))


class StringKind(IndexKind):
    model = StringIndex
    modifiers = frozenset({"exact", "contains", "missing"})

    def rows(self, param, type_name, element) -> Iterator[Row]:
        yield from text_rows(param.name, strings_of(type_name, element))

    def condition(self, plan, param, raw_name, modifier, value) -> Q:
        return text_condition(self.index_rows(plan, param.name), modifier, value)


def text_condition(rows, modifier: str, value: str) -> Q:
    """Folded prefix by default; `:contains` anywhere; `:exact` the text as written."""
    matches = any_of(_match(modifier, unescape(v)) for v in or_values(value))
    return semi_join(rows.filter(matches))


def _match(modifier: str, text: str) -> Q:
    if modifier == "exact":
        return Q(exact=text)
    if modifier == "contains":
        return Q(value__contains=fold(text))
    return Q(value__startswith=fold(text))
