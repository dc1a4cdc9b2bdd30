"""What every index kind shares: its rows, its semi-join, `:missing`, and Extension values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Model, Q, QuerySet

from ...errors import InvalidRequest
from ...searchparams import SearchParam
from ...searchparams.model import choice_element
from ..plan import Plan

# One index row as extraction produces it: the table, the param name it is filed under, and the
# values of the table's value columns (tables.TABLES) in order.
Row = tuple[type[Model], str, tuple]


class IndexKind:
    """One kind of search parameter: the rows its values become and the conditions on them."""

    model: type[Model]
    modifiers: frozenset[str] = frozenset({"missing"})

    def modifiers_for(self, param: SearchParam) -> frozenset[str]:
        """The modifiers this parameter accepts (some depend on its element type)."""
        return self.modifiers

    def evaluates(self, param: SearchParam) -> bool:
        """Whether searches on this parameter are answered (not refused as not-supported)."""
        return True

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        """The index rows one selected element contributes."""
        raise NotImplementedError

    def condition(self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str):
        """The Q a search value adds (modifier already checked against modifiers_for)."""
        raise NotImplementedError

    def index_rows(self, plan: Plan, param_name: str, model: type[Model] | None = None) -> QuerySet:
        """The rows filed under `param_name` for the plan's resource type."""
        model = model or self.model
        return model.objects.filter(resource_type=plan.resource_type, param=param_name)

    def missing(self, plan: Plan, param: SearchParam, raw_name: str, value: str) -> Q:
        if value not in ("true", "false"):
            raise InvalidRequest(f"'{raw_name}' must be true or false, not '{value}'")
        return semi_join(self.index_rows(plan, param.name), negate=value == "true")


def semi_join(rows: QuerySet, negate: bool = False) -> Q:
    """Resources with (or, negated, without) a row among `rows`."""
    condition = Q(pk__in=rows.values("resource_id"))
    return ~condition if negate else condition


def extension_value(type_name: str | None, element: Any) -> tuple[str, Any] | None:
    """An Extension is searched by its value[x], typed by its JSON key; None for other types."""
    if type_name != "Extension" or not isinstance(element, dict):
        return None
    return choice_element("Extension.value", element)
