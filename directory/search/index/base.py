"""What every index kind shares: its tables, its rows, its semi-join, `:missing`, Extension values.

An `IndexTable` is one table and its value columns, declared once: it inserts a resource's rows,
deletes them, and gives COPY its columns and tuples. A kind lists the tables it writes into.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Model, Q, QuerySet

from ...errors import InvalidRequest
from ...searchparams import SearchParam
from ...searchparams.model import choice_element
from ..plan import Plan

# The columns every index table starts with, before its value columns.
KEY_COLUMNS = ("resource_id", "resource_type", "param")


@dataclass(frozen=True, eq=False)
class IndexTable:
    """One index table: its model and value columns (in the order a row's values come)."""

    model: type[Model]
    columns: tuple[str, ...]

    @property
    def copy_columns(self) -> tuple[str, ...]:
        """Every column a bulk COPY fills, in the order of `copy_rows`."""
        return (*KEY_COLUMNS, *self.columns)

    def copy_rows(self, pk: int, resource_type: str, rows: Iterable[tuple]) -> Iterator[tuple]:
        """One resource's rows (param, *values) as COPY tuples."""
        return ((pk, resource_type, *values) for values in rows)

    def insert(self, items: Iterable[tuple[Any, list[tuple]]], batch_size: int = 2000) -> None:
        """Insert the rows of stored resources: (Resource row, its rows in this table)."""
        objects = [
            self.model(
                resource_id=row.pk,
                resource_type=row.resource_type,
                param=values[0],
                **dict(zip(self.columns, values[1:], strict=True)),
            )
            for row, rows in items
            for values in rows
        ]
        self.model._default_manager.bulk_create(objects, batch_size=batch_size)

    def delete(self, pks: list[int]) -> None:
        """Delete every row of these resources (Resource primary keys)."""
        self.model._default_manager.filter(resource_id__in=pks).delete()


# One index row as extraction produces it: the table, the param name it is filed under, and the
# values of the table's value columns in order.
Row = tuple[IndexTable, str, tuple]


class IndexKind:
    """One kind of search parameter: its tables, the rows its values become, the conditions.

    `tables[0]` is the table its conditions read; the others are tables it also writes into
    (token `:text` rows are strings).
    """

    tables: tuple[IndexTable, ...]
    modifiers: frozenset[str] = frozenset({"missing"})

    @property
    def table(self) -> IndexTable:
        return self.tables[0]

    def modifiers_for(self, param: SearchParam) -> frozenset[str]:
        """The modifiers this parameter accepts (some depend on its element type)."""
        return self.modifiers

    def evaluates(self, param: SearchParam) -> bool:
        """Whether searches on this parameter are answered (not refused as not-supported)."""
        return True

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        """The index rows one selected element contributes."""
        raise NotImplementedError

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        """The Q a search value adds (modifier already checked against modifiers_for)."""
        raise NotImplementedError

    def index_rows(self, plan: Plan, param_name: str, table: IndexTable | None = None) -> IndexRows:
        """The rows filed under `param_name` for the plan's resource type."""
        model = (table or self.table).model
        return IndexRows(model).filter(resource_type=plan.resource_type, param=param_name)

    def missing(self, plan: Plan, param: SearchParam, raw_name: str, value: str) -> Q:
        if value not in ("true", "false"):
            raise InvalidRequest(f"'{raw_name}' must be true or false, not '{value}'")
        return semi_join(self.index_rows(plan, param.name), negate=value == "true")


class IndexRows:
    """Rows of one index table as conditions not yet built into a queryset.

    Building the queryset (Django resolving every lookup) was most of what parsing a search
    cost; a search whose shape was compiled before (search/compiled.py) only reads these
    conditions for their values, so the queryset is built only when a query is.
    """

    __slots__ = ("conditions", "fields", "model")

    def __init__(
        self, model: type[Model], conditions: tuple[Q, ...] = (), fields: tuple[str, ...] = ()
    ) -> None:
        self.model = model
        self.conditions = conditions
        self.fields = fields

    def filter(self, *args: Q, **kwargs: Any) -> IndexRows:
        return IndexRows(self.model, (*self.conditions, Q(*args, **kwargs)), self.fields)

    def values(self, *fields: str) -> IndexRows:
        return IndexRows(self.model, self.conditions, fields)

    def queryset(self) -> QuerySet[Any]:
        rows = self.model._default_manager.all()
        for condition in self.conditions:
            rows = rows.filter(condition)
        return rows.values(*self.fields) if self.fields else rows

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        """What Django calls on a filter value: the queryset's own resolution."""
        return self.queryset().resolve_expression(*args, **kwargs)


def semi_join(rows: IndexRows | QuerySet[Any], negate: bool = False) -> Q:
    """Resources with (or, negated, without) a row among `rows`."""
    condition = Q(pk__in=rows.values("resource_id"))
    return ~condition if negate else condition


def semi_joined(condition: Q, model: type[Model] | None = None) -> QuerySet[Any] | None:
    """The rows of a plain (not negated) semi-join such as `semi_join` makes, else None; with
    `model`, only rows of that model (checked before any queryset is built).

    Index rows go with their resource (written and deleted in its transaction, filed under its
    type), so these rows already name live resources of their type only.
    """
    if condition.negated or len(condition.children) != 1:
        return None
    child = condition.children[0]
    if not isinstance(child, tuple) or child[0] != "pk__in":
        return None
    rows = child[1]
    if not isinstance(rows, IndexRows | QuerySet) or model not in (None, rows.model):
        return None
    return rows.queryset() if isinstance(rows, IndexRows) else rows


def extension_value(type_name: str | None, element: Any) -> tuple[str, Any] | None:
    """An Extension is searched by its value[x], typed by its JSON key; None for other types."""
    if type_name != "Extension" or not isinstance(element, dict):
        return None
    return choice_element("Extension.value", element)
