"""Search index rows of a resource: extracted (each parameter's expression, then its index kind),
inserted and deleted, table by table over the tables the registered kinds declare.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Model

from . import certificate_index
from .models import ReferenceIndex, Resource, StringIndex, TokenIndex
from .normalize import fold
from .registry import RESOURCES
from .search.index import KINDS, TABLES, IndexTable, ParsedReference, parse_reference

__all__ = [
    "IndexRows",
    "ParsedReference",
    "delete_rows",
    "extract",
    "insert_rows",
    "parse_reference",
    "sort_name",
    "tables_for",
]


@dataclass
class IndexRows:
    """Every row a resource contributes, per index table: (param, *value columns)."""

    rows: dict[type[Model], list[tuple]]
    sort_name: str

    @property
    def strings(self) -> list[tuple]:
        return self.rows[StringIndex]

    @property
    def tokens(self) -> list[tuple]:
        return self.rows[TokenIndex]

    @property
    def references(self) -> list[tuple[str, ParsedReference]]:
        return [
            (p, ParsedReference("absolute" if e else "relative", type=t, id=i))
            for p, t, i, e in self.rows[ReferenceIndex]
        ]


def extract(resource_type: str, content: dict, *, engine: bool = False) -> IndexRows:
    """Every index row a resource contributes, deduplicated.

    With engine=True every expression is evaluated by fhirpathpy, never by a direct accessor:
    the oracle the tests compare the fast path with.
    """
    found: dict[type[Model], set[tuple]] = {table.model: set() for table in TABLES}
    for param in RESOURCES[resource_type].params.values():
        kind = KINDS.get(param.type)
        if kind is None:
            continue
        elements = param.engine_elements(content) if engine else param.elements(content)
        for type_name, element in elements:
            for table, name, values in kind.rows(param, type_name, element):
                found[table.model].add((name, *values))
    # Rows no search parameter defines, filed for lookups of the server's own (internal names).
    for model, name, values in certificate_index.rows(resource_type, content):
        found[model].add((name, *values))
    return IndexRows(
        rows={model: sorted(rows) for model, rows in found.items()},
        sort_name=sort_name(resource_type, content),
    )


def insert_rows(items: list[tuple[Resource, IndexRows]], batch_size: int = 2000) -> None:
    """Insert the extracted rows of stored resources, one statement per table that has any."""
    for table in TABLES:
        table.insert([(row, rows.rows[table.model]) for row, rows in items], batch_size)


def delete_rows(pks: list[int], resource_type: str | None = None) -> None:
    """Delete every index row of these resources (Resource primary keys).

    Given their one type, only the tables that type's parameters can fill are cleared: a
    Practitioner has no position or boundary rows, and each table skipped is a statement saved
    on every update and delete.
    """
    for table in TABLES if resource_type is None else tables_for(resource_type):
        table.delete(pks)


def tables_for(resource_type: str) -> list[IndexTable]:
    """The index tables a resource of this type can have rows in."""
    # Token and date tables always: the server's own certificate lookups file rows there too.
    kinds = {"token", "date"} | {p.type for p in RESOURCES[resource_type].params.values()}
    wanted = {table for name in kinds if name in KINDS for table in KINDS[name].tables}
    return [table for table in TABLES if table in wanted]


def sort_name(resource_type: str, content: dict) -> str:
    """The key for `_sort=name`: the first name as a person reads it, folded."""
    rdef = RESOURCES[resource_type]
    if not rdef.sort_name_param:
        return ""
    param = rdef.params[rdef.sort_name_param]
    for type_name, element in param.elements(content):
        if type_name == "HumanName" and isinstance(element, dict):
            family = element.get("family") or ""
            given = " ".join(element.get("given") or [])
            text = f"{family} {given}".strip() or element.get("text") or ""
        else:
            text = element if isinstance(element, str) else ""
        if text.strip():
            return fold(text)[:200]
    return ""
