"""Index kinds: one class per search parameter type, writing its rows and reading them back.

`KINDS` maps a SearchParameter type to its kind; a type without one (`number`, `quantity`: no
stored type's parameter uses them) is refused by the search. A kind for
another type is added here, with its table in `tables.TABLES`.
"""

from __future__ import annotations

from .base import IndexKind, Row, semi_join
from .composite import CompositeKind
from .date import DateKind
from .position import SpecialKind
from .reference import ParsedReference, ReferenceKind, parse_reference
from .string import StringKind
from .tables import TABLES
from .token import TokenKind
from .uri import UriKind

KINDS: dict[str, IndexKind] = {
    "string": StringKind(),
    "token": TokenKind(),
    "reference": ReferenceKind(),
    "date": DateKind(),
    "uri": UriKind(),
    "composite": CompositeKind(),
    "special": SpecialKind(),
}


def evaluates(param) -> bool:
    """Whether the engine answers this parameter: a kind for its type that takes it."""
    kind = KINDS.get(param.type)
    return kind is not None and kind.evaluates(param)


__all__ = [
    "KINDS",
    "TABLES",
    "IndexKind",
    "ParsedReference",
    "Row",
    "evaluates",
    "parse_reference",
    "semi_join",
]
