"""URI parameters (`_profile`, ...): exact match, `:below` (path prefix) and `:above`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from ...models import UriIndex
from ...normalize import clip
from ...searchparams import SearchParam
from ..plan import Plan
from ..values import any_of, or_values, unescape
from .base import IndexKind, IndexTable, Row, extension_value, semi_join

URIS = IndexTable(UriIndex, ("value",))


def uris_of(type_name: str | None, element: Any) -> list[str]:
    value = extension_value(type_name, element)
    if value is not None:
        return uris_of(*value)
    return [element] if isinstance(element, str) and element else []


class UriKind(IndexKind):
    tables = (URIS,)
    modifiers = frozenset({"below", "above", "missing"})

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        for uri in uris_of(type_name, element):
            yield URIS, param.name, (clip(uri),)

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        matches = any_of(_match(modifier, unescape(v)) for v in or_values(value))
        return semi_join(self.index_rows(plan, param.name).filter(matches))


def _match(modifier: str, uri: str) -> Q:
    """`:below` finds URIs under the value; `:above` the value's ancestors (and itself)."""
    if modifier == "below":
        return Q(value=clip(uri)) | Q(value__startswith=clip(uri.rstrip("/") + "/"))
    if modifier == "above":
        return Q(value__in=[clip(prefix) for prefix in _ancestors(uri)])
    return Q(value=clip(uri))


def _ancestors(uri: str) -> list[str]:
    """`http://a.org/fhir/x/1` -> itself, `http://a.org/fhir/x`, `http://a.org/fhir`, ..."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return [uri]
    parts = rest.rstrip("/").split("/")
    return [f"{scheme}://{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
