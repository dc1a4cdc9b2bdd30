"""Index kinds: one class per search parameter type, owning its tables, rows and conditions.

`KINDS` is the one registry: it maps a SearchParameter type to its kind, and `TABLES` (every
table the registered kinds write into) follows from it, so extraction, single-resource writes
(storage), bulk COPY (bulkload) and search all loop over the kinds and never name a table. Adding
a kind is one class (its `IndexTable`, `rows` and `condition`) and one line in `KINDS`. A type
without a kind (`number`, `quantity`: no stored type's parameter uses them) is refused by the
search.
"""

from __future__ import annotations

from ...searchparams import SearchParam
from .base import IndexKind, IndexRows, IndexTable, Row, semi_join, semi_joined
from .composite import CompositeKind
from .date import DateKind
from .position import SpecialKind
from .reference import ParsedReference, ReferenceKind, parse_reference
from .string import StringKind, substring_rows
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

# Each table once, in registry order (kinds share tables: token `:text` rows are strings).
TABLES: tuple[IndexTable, ...] = tuple(
    dict.fromkeys(table for kind in KINDS.values() for table in kind.tables)
)


def evaluates(param: SearchParam) -> bool:
    """Whether the engine answers this parameter: a kind for its type that takes it."""
    kind = KINDS.get(param.type)
    return kind is not None and kind.evaluates(param)


__all__ = [
    "KINDS",
    "TABLES",
    "IndexKind",
    "IndexRows",
    "IndexTable",
    "ParsedReference",
    "Row",
    "evaluates",
    "parse_reference",
    "semi_join",
    "semi_joined",
    "substring_rows",
]
