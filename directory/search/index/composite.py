"""Composite parameters: `a$b`, both parts matched within one element the composite selects.

The composites of the directory types pair a token with a token (R4 Group
`characteristic-value`) or with a reference (NDH HealthcareService
`new-patient-and-from-network`); string and uri components are read too. Each element the
composite's expression selects contributes one TokenIndex row per combination of its component
values: the first component's key in the system column, the second's in the code column. A key
is what its type's search compares: a token's `system|code`, a reference's `Type/id`, a string
folded, a uri as written; so `a$b` is two range or equality tests on one row, never a join.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import product
from typing import Any

from django.db.models import Q

from ...errors import InvalidRequest
from ...normalize import clip, fold
from ...registry import ID_PATTERN
from ...searchparams import SearchParam
from ...searchparams.expressions import Term, relative_to
from ..plan import Plan
from ..values import any_of, nothing, or_values, split, unescape
from .base import IndexKind, Row, semi_join
from .reference import parse_reference, references_of
from .string import strings_of
from .token import TOKENS, tokens_of
from .uri import uris_of

# One column per component: a composite of more components has no row layout here (no
# definition for a directory type declares one).
_COLUMNS = ("system", "code")


@dataclass(frozen=True)
class Component:
    """One component: its parameter type, the SearchParameter it names, its relative term."""

    type: str
    param: SearchParam
    term: Term

    def keys(self, element: Any) -> list[str]:
        """The keys this component finds in one element the composite selected."""
        return [clip(k) for t, e in self.term.elements(element) for k in _KEYS[self.type](t, e)]

    def match(self, column: str, raw_name: str, text: str) -> Q:
        return _MATCHES[self.type](self.param, column, raw_name, text)


@cache
def components(base: str, name: str) -> tuple[Component, ...] | None:
    """The composite's components, or None when one cannot be read (the parameter is refused)."""
    from ...registry import RESOURCES

    param = RESOURCES[base].params[name]
    by_url = {p.url: p for p in RESOURCES[base].params.values()}
    element_type = param.terms[0].static_type if len(param.terms) == 1 else None
    if element_type is None or len(param.components) != len(_COLUMNS):
        return None
    found = []
    for url, expression in param.components:
        declared = by_url.get(url)
        text = relative_to(param.terms[0].text, expression, base)
        if declared is None or declared.type not in _KEYS or text is None:
            return None
        try:
            term = Term(element_type, text)
        except ValueError:  # not readable relative to the element: the composite is refused
            return None
        found.append(Component(declared.type, declared, term))
    return tuple(found)


class CompositeKind(IndexKind):
    tables = (TOKENS,)

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        parts = components(param.base, param.name)
        if parts is None or not isinstance(element, dict):
            return
        for keys in product(*(part.keys(element) for part in parts)):
            yield TOKENS, param.name, keys

    def evaluates(self, param: SearchParam) -> bool:
        return components(param.base, param.name) is not None

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        parts = components(param.base, param.name)
        if parts is None:
            raise InvalidRequest(
                f"Composite search parameter '{param.name}' is not supported",
                code="not-supported",
                expression=[raw_name],
            )
        matches = any_of(_match(parts, raw_name, v) for v in or_values(value))
        return semi_join(self.index_rows(plan, param.name).filter(matches))


def _match(parts: tuple[Component, ...], raw_name: str, text: str) -> Q:
    values = split(text, "$")
    if len(values) != len(parts):
        raise InvalidRequest(
            f"'{raw_name}' value '{text[:80]}' must have {len(parts)} parts separated by '$'",
            expression=[raw_name],
        )
    condition = Q()
    for column, part, value in zip(_COLUMNS, parts, values, strict=True):
        if not value:
            raise InvalidRequest(f"'{raw_name}' value '{text[:80]}' has an empty part")
        condition &= part.match(column, raw_name, value)
    return condition


# ---------------------------------------------------------------- keys, per component type


def _token_keys(type_name: str | None, element: Any) -> list[str]:
    return [f"{system}|{code}" for system, code in tokens_of(type_name, element)]


def _reference_keys(type_name: str | None, element: Any) -> list[str]:
    return [f"{ref.type}/{ref.id}" for ref in references_of(type_name, element)]


def _string_keys(type_name: str | None, element: Any) -> list[str]:
    return [fold(text) for text in strings_of(type_name, element) if text.strip()]


_KEYS: dict[str, Callable[[str | None, Any], list[str]]] = {
    "token": _token_keys,
    "reference": _reference_keys,
    "string": _string_keys,
    "uri": uris_of,
}


# ---------------------------------------------------------------- matches, per component type


def _token_match(param: SearchParam, column: str, raw_name: str, text: str) -> Q:
    """`code` (any system), `system|code`, `|code` (no system) or `system|` (any code)."""
    parts = [unescape(p) for p in split(text, "|")]
    if len(parts) > 2 or not any(parts):
        raise InvalidRequest(f"'{raw_name}' component '{text[:80]}' is not a token")
    if len(parts) == 1:
        return Q(**{f"{column}__endswith": "|" + parts[0]})
    system, code = parts
    if not code:
        return Q(**{f"{column}__startswith": system + "|"})
    return Q(**{column: clip(f"{system}|{code}")})


def _reference_match(param: SearchParam, column: str, raw_name: str, text: str) -> Q:
    """`Type/id` (or an absolute URL ending in it); a bare id names the only target type."""
    text = unescape(text)
    parsed = parse_reference(text)
    if parsed is not None:
        return Q(**{column: f"{parsed.type}/{parsed.id}"})
    if not ID_PATTERN.match(text):
        raise InvalidRequest(f"'{raw_name}' component '{text[:80]}' is not a reference")
    if len(param.targets) == 1:
        return Q(**{column: f"{param.targets[0]}/{text}"})
    return Q(**{f"{column}__endswith": "/" + text}) if param.targets else nothing()


def _string_match(param: SearchParam, column: str, raw_name: str, text: str) -> Q:
    return Q(**{f"{column}__startswith": fold(unescape(text))})


def _uri_match(param: SearchParam, column: str, raw_name: str, text: str) -> Q:
    return Q(**{column: clip(unescape(text))})


_MATCHES: dict[str, Callable[[SearchParam, str, str, str], Q]] = {
    "token": _token_match,
    "reference": _reference_match,
    "string": _string_match,
    "uri": _uri_match,
}
