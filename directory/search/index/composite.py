"""Composite parameters whose components are tokens (Group `characteristic-value`).

Each element the composite's expression selects (a Group.characteristic) contributes one
TokenIndex row per pair of component values, the first component's `system|code` in the system
column and the second's in the code column, so `code$value` matches within one element only.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from itertools import product
from typing import Any

from django.db.models import Q

from ...errors import InvalidRequest
from ...normalize import clip
from ...searchparams import SearchParam
from ...searchparams.expressions import Term
from ..plan import Plan
from ..values import any_of, or_values, split, unescape
from .base import IndexKind, Row, semi_join
from .token import TOKENS, tokens_of

_COLUMNS = ("system", "code")


@cache
def _components(base: str, name: str) -> tuple[Term, ...] | None:
    """The component terms (relative to the composite's element), if all are token typed."""
    from ...registry import RESOURCES

    param = RESOURCES[base].params[name]
    by_url = {p.url: p for p in RESOURCES[base].params.values()}
    element_type = param.terms[0].static_type if len(param.terms) == 1 else None
    if element_type is None or len(param.components) != len(_COLUMNS):
        return None
    terms = []
    for url, expression in param.components:
        component = by_url.get(url)
        if component is None or component.type != "token":
            return None
        try:
            term = Term(element_type, expression)
        except ValueError:  # not readable relative to the element: the composite is refused
            return None
        if not term.fast:
            return None
        terms.append(term)
    return tuple(terms)


class CompositeKind(IndexKind):
    tables = (TOKENS,)

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        terms = _components(param.base, param.name)
        if terms is None or not isinstance(element, dict):
            return
        values = [
            [f"{s}|{c}" for t, e in term.elements(element) for s, c in tokens_of(t, e)]
            for term in terms
        ]
        for first, second in product(*values):
            yield TOKENS, param.name, (clip(first), clip(second))

    def evaluates(self, param: SearchParam) -> bool:
        return _components(param.base, param.name) is not None

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        if _components(param.base, param.name) is None:
            raise InvalidRequest(
                f"Composite search parameter '{param.name}' is not supported",
                code="not-supported",
                expression=[raw_name],
            )
        matches = any_of(_match(raw_name, v) for v in or_values(value))
        return semi_join(self.index_rows(plan, param.name).filter(matches))


def _match(raw_name: str, text: str) -> Q:
    parts = split(text, "$")
    if len(parts) != len(_COLUMNS):
        raise InvalidRequest(
            f"'{raw_name}' value '{text}' must have {len(_COLUMNS)} parts separated by '$'",
            expression=[raw_name],
        )
    condition = Q()
    for column, part in zip(_COLUMNS, parts, strict=True):
        condition &= _token_part(column, raw_name, part)
    return condition


def _token_part(column: str, raw_name: str, text: str) -> Q:
    """`code` (any system), `system|code`, `|code` (no system) or `system|` (any code)."""
    parts = [unescape(p) for p in split(text, "|")]
    if len(parts) > 2 or not any(parts):
        raise InvalidRequest(f"'{raw_name}' component '{text}' is not a token")
    if len(parts) == 1:
        return Q(**{f"{column}__endswith": "|" + parts[0]})
    system, code = parts
    if not code:
        return Q(**{f"{column}__startswith": system + "|"})
    return Q(**{column: clip(f"{system}|{code}")})
