"""Search statements compiled once per shape and run with each request's values (issue 10).

Building a search's ORM query and compiling it to SQL was about a third of an NPI search's time
in the server. A search's SQL text depends on its *shape*, not its values: which conditions on
which columns, combined how, which lookups, how many values in each list (and which repeat, as
`IN` drops repeats), the boolean and null constants Django writes into the text, the subqueries'
structure, the order and the limit. `shape_of` reads that from the plan's conditions without
building a query: the outer conditions are unresolved `Q` trees, the subqueries of semi-joins are
index-table querysets whose `WHERE` trees are walked. Values become the statement's parameters,
each prepared by Django's own lookup (`process_rhs`: the backend's date adaptation, `LIKE`
escaping), so a later request of the same shape gets exactly the parameters Django would give it.

The walk of a chain's first pages (search/probes.py) builds its statements from the plan's
pieces: `ShapeWriter` writes their shape the same way, piece by piece in the order the SQL takes
the parameters (plus the `Value`s and `CASE`s of the walk), and `shaped_value` keeps the
statements of a single value (the walk's counts, a window's end) as sent.

The first request of a shape compiles the statement with Django and checks that the parameters
read off its shape, in order, are exactly the ones Django produced; only then is the statement
kept. What the walk cannot describe (expressions such as `near`'s distance or the boundary ids of
`contains`, annotations, ordering by an expression) is run uncached, as before.

Kept statements are bounded, least recently used first out (`FHIR_SEARCH_SHAPE_CACHE`, per
process and database alias), so endless distinct shapes from a client cost memory only up to
the bound; a statement over `MAX_SQL_CHARS` is never kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist
from django.db import connections, router
from django.db.models import F, Model, Q, QuerySet
from django.db.models.expressions import Case, Col, Exists, OrderBy, Value
from django.db.models.lookups import Lookup
from django.db.models.query import ModelIterable
from django.db.models.sql import Query
from django.db.models.sql.where import WhereNode

from common.lru import BoundedLRU

from ..models import Resource
from .index import IndexRows

DEFAULT_CACHE_SIZE = 512
# A statement this long is run but not kept: the bound on entries is then a bound on memory.
MAX_SQL_CHARS = 32_768
# Values that are parameters of the statement (their type is part of the shape).
_PARAMETER_TYPES = (str, int, float, Decimal, datetime, date)


class _NotCacheable(Exception):
    """The walk met something whose SQL it cannot describe by shape."""


# ---------------------------------------------------------------- shapes


@dataclass(frozen=True)
class _Leaf:
    """One compared value: the lookup that turns it into parameters."""

    lookup: Lookup
    constant: bool  # a boolean or None: part of the shape, and Django may write it into the SQL

    def params(self, compiler: Any, connection: Any) -> list:
        try:
            _, params = self.lookup.process_rhs(compiler, connection)
        except EmptyResultSet:  # `IN ()`: the node is left out of the SQL, no parameters
            return []
        return list(params)


@dataclass(frozen=True)
class _Param:
    """A value the statement takes as a parameter of an expression (`Value`), not of a lookup."""

    value: Value
    constant: bool

    def params(self, compiler: Any, connection: Any) -> list:
        return list(compiler.compile(self.value)[1])


@dataclass
class Shape:
    key: tuple
    leaves: list[_Leaf | _Param]


class ShapeWriter:
    """A statement's shape written part by part, in the order its SQL takes the parameters.

    For statements assembled from the plan's pieces (search/probes.py), whose shape is those
    pieces' shapes plus what the assembly adds; anything not describable leaves no shape.
    """

    def __init__(self, *kind: object) -> None:
        self.key: list = [kind]
        self.leaves: list[_Leaf | _Param] = []
        self.describable = True

    def part(self, *parts: object) -> ShapeWriter:
        """Structure of the statement that takes no parameter (a correlation, a column)."""
        self.key.append(parts)
        return self

    def conditions(self, model: type[Model], conditions: Sequence[Q]) -> ShapeWriter:
        """Conditions on `model`, ANDed in this order (as `filter` calls add them)."""

        def walk() -> None:
            for condition in conditions:
                _walk_q(model, condition, self.key, self.leaves)

        return self._walked(walk)

    def rows(self, rows: IndexRows | QuerySet | Query) -> ShapeWriter:
        """The selected rows and WHERE tree of unbuilt index rows, a queryset or a query."""
        if isinstance(rows, IndexRows):
            self.key.append(("rows", rows.model._meta.label, rows.fields))
            return self.conditions(rows.model, rows.conditions)
        query = rows.query if isinstance(rows, QuerySet) else rows
        return self._walked(lambda: _walk_query(query, self.key, self.leaves))

    def value(self, value: Value) -> ShapeWriter:
        """A `Value` expression the statement takes as a parameter."""
        return self._walked(lambda: _value_leaf(value, self.key, self.leaves))

    def shape(self) -> Shape | None:
        return Shape(tuple(self.key), self.leaves) if self.describable else None

    def _walked(self, walk: Callable[[], object]) -> ShapeWriter:
        if self.describable:
            try:
                walk()
            except _NotCacheable:
                self.describable = False
        return self


def shape_of(conditions: Sequence[Q]) -> Shape | None:
    """The shape of these conditions on Resource (ANDed, in order), or None when not describable."""
    key: list = []
    leaves: list = []
    try:
        for condition in conditions:
            _walk_q(Resource, condition, key, leaves)
    except _NotCacheable:
        return None
    return Shape(tuple(key), leaves)


def _walk_q(model: type[Model], node: Q, key: list, leaves: list) -> None:
    key.append(("Q", node.connector, node.negated, len(node.children)))
    for child in node.children:
        if isinstance(child, Q):
            _walk_q(model, child, key, leaves)
            continue
        if not isinstance(child, tuple):
            raise _NotCacheable
        name, value = child
        field_name, _, lookup_name = name.partition("__")
        field = _local_field(model, field_name)
        lookup_class = field.get_lookup(lookup_name or "exact")
        if lookup_class is None:
            raise _NotCacheable
        if isinstance(value, IndexRows):  # conditions not yet built: read as they are
            key.append(("rows", field.attname, lookup_class, value.model._meta.label, value.fields))
            for condition in value.conditions:
                _walk_q(value.model, condition, key, leaves)
            continue
        if isinstance(value, QuerySet):
            value = value.query
        if isinstance(value, Query):
            key.append(("sub", field.attname, lookup_class))
            _walk_query(value, key, leaves)
            continue
        key.append(("value", field.attname, lookup_class, _value_key(value)))
        col = field.get_col(model._meta.db_table)
        leaves.append(_Leaf(lookup_class(col, value), _is_constant(value)))


def _local_field(model: type[Model], name: str) -> Any:
    """A concrete column of the model itself (`pk` included); relations and transforms are not."""
    try:
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    except FieldDoesNotExist:
        raise _NotCacheable from None
    if field is None or field.is_relation or not getattr(field, "concrete", False):
        raise _NotCacheable
    return field


def _walk_query(query: Query, key: list, leaves: list) -> None:
    """A subquery's structure: only plain selects of columns with a WHERE tree of lookups."""
    if query.annotations:
        raise _NotCacheable
    _walk_selecting(query, key, leaves)


def _walk_exists(node: Exists, key: list, leaves: list) -> None:
    """`EXISTS (SELECT 1 ...)` (the walk's levels asked per row): its `1` is a parameter, taken
    before the WHERE tree's."""
    annotations = list(node.query.annotations.values())
    if len(annotations) != 1 or not isinstance(annotations[0], Value) or node.query.select:
        raise _NotCacheable
    key.append(("exists", tuple(node.query.annotations)))
    _value_leaf(annotations[0], key, leaves)
    _walk_selecting(node.query, key, leaves)


def _walk_selecting(query: Query, key: list, leaves: list) -> None:
    if (
        query.combinator
        or query.extra
        or query.extra_order_by
        or query.group_by is not None
        or query.distinct_fields
        or query.select_for_update
        or query.select_related
        or any(not isinstance(item, str) for item in query.order_by)
        or any(not isinstance(column, Col) for column in query.select)
    ):
        raise _NotCacheable
    key.append(
        (
            "query",
            query.model._meta.label if query.model else None,
            tuple(_column_key(column) for column in query.select),
            query.values_select,
            query.default_cols,
            query.distinct,
            query.low_mark,
            query.high_mark,
            tuple(query.order_by),
            query.default_ordering,
            query.standard_ordering,
            tuple(_join_key(join) for join in query.alias_map.values()),
            tuple(query.alias_refcount.items()),  # unreferenced aliases are left out of FROM
        )
    )
    _walk_where(query.where, key, leaves)


def _column_key(column: Any) -> tuple:
    return (column.alias, column.target.column)


def _join_key(join: Any) -> tuple:
    identity = getattr(join, "identity", None)
    return identity if identity is not None else (join.table_name, join.table_alias)


def _walk_where(node: Any, key: list, leaves: list) -> None:
    if isinstance(node, WhereNode):
        key.append(("where", node.connector, node.negated, len(node.children)))
        for child in node.children:
            _walk_where(child, key, leaves)
        return
    if isinstance(node, Case):
        _walk_case(node, key, leaves)
        return
    if isinstance(node, Exists):  # `NOT EXISTS` is another expression, refused below
        _walk_exists(node, key, leaves)
        return
    if not isinstance(node, Lookup) or not isinstance(node.lhs, Col) or node.bilateral_transforms:
        raise _NotCacheable
    lhs = (type(node), node.lhs.alias, node.lhs.target.column)
    if isinstance(node.rhs, Col):  # a correlation: an enclosing query's column, no parameter
        key.append(("outer", *lhs, node.rhs.alias, node.rhs.target.column))
        return
    if isinstance(node.rhs, Query):
        key.append(("sub", *lhs))
        _walk_query(node.rhs, key, leaves)
        return
    key.append(("value", *lhs, _value_key(node.rhs)))
    leaves.append(_Leaf(node, _is_constant(node.rhs)))


def _walk_case(node: Case, key: list, leaves: list) -> None:
    """`CASE WHEN <condition> THEN <value> ... ELSE <value> END` (the walk's probes and the
    levels they ask of each walked resource)."""
    if not isinstance(node.default, Value) or any(
        not isinstance(when.result, Value) for when in node.cases
    ):
        raise _NotCacheable
    key.append(("case", type(node.output_field), len(node.cases)))
    for when in node.cases:
        _walk_where(when.condition, key, leaves)
        _value_leaf(when.result, key, leaves)
    _value_leaf(node.default, key, leaves)


def _value_leaf(value: Value, key: list, leaves: list) -> None:
    output = getattr(value, "_output_field_or_none")  # noqa: B009 - not in Value's stubs
    key.append(("param", _value_key(value.value), type(output) if output else None))
    leaves.append(_Param(value, _is_constant(value.value)))


def _is_constant(value: object) -> bool:
    return value is None or isinstance(value, bool)


def _value_key(value: object) -> object:
    """What of a value shapes the SQL: constants themselves, a parameter's type, a list's form."""
    if _is_constant(value):
        return ("constant", value)
    if isinstance(value, _PARAMETER_TYPES):
        return type(value)
    if isinstance(value, list | tuple | set | frozenset) and not isinstance(value, str):
        items = list(value)
        first: dict = {}
        try:
            repeats = tuple(first.setdefault((type(v), v), i) for i, v in enumerate(items))
        except TypeError:  # unhashable items
            raise _NotCacheable from None
        # Order matters to `IN`'s placeholders only through repeats and Nones, both in the key.
        return ("items", type(value), tuple(_item_key(v) for v in items), repeats)
    raise _NotCacheable  # an expression, a model instance...: not described here


def _item_key(value: object) -> object:
    if value is None:
        return ("constant", None)
    if isinstance(value, _PARAMETER_TYPES) and not isinstance(value, bool):
        return type(value)
    raise _NotCacheable


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class _Statement:
    """A compiled statement of Resource rows and which leaves give its parameters."""

    sql: str
    emits: tuple[bool, ...]  # per leaf: False where Django wrote the constant into the SQL
    converters: dict
    columns: list[str]


class ShapeCache(BoundedLRU[tuple, _Statement]):
    """Statements by shape, least recently used evicted past `size` (0 keeps none)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.hits = self.misses = 0

    def get(self, key: tuple) -> _Statement | None:
        found = super().get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: tuple, statement: _Statement) -> None:
        if self.size > 0 and len(statement.sql) <= MAX_SQL_CHARS:
            super().put(key, statement)


_cache = ShapeCache(DEFAULT_CACHE_SIZE)


def cache() -> ShapeCache:
    """This process's statements, bounded by the setting as it is now."""
    _cache.size = getattr(settings, "FHIR_SEARCH_SHAPE_CACHE", DEFAULT_CACHE_SIZE)
    return _cache


def resource_rows(
    kind: tuple, conditions: Sequence[Q], build: Callable[[], QuerySet[Resource]]
) -> list[Resource]:
    """The rows `build()` selects, its statement compiled once per shape.

    `conditions` are the Resource conditions `build` applies, in the order their values are
    parameters of its SQL; `kind` names everything else of `build` that shapes the SQL (order,
    limit). A shape that cannot be described, or whose parameters do not come out as Django's,
    runs as Django compiles it.
    """
    statements = cache()
    shape = shape_of(conditions) if statements.size > 0 else None
    return shaped_rows(kind, shape, build)


def shaped_rows(
    kind: tuple, shape: Shape | None, build: Callable[[], QuerySet[Resource]]
) -> list[Resource]:
    """The rows `build()` selects, kept by `shape` (its parameters in SQL order) and `kind`."""
    statements = cache()
    if shape is None or statements.size <= 0:
        return list(build())
    using = router.db_for_read(Resource)
    key = (using, kind, shape.key)
    statement = statements.get(key)
    if statement is not None:
        return _run(statement, using, _params(statement, shape, using))
    queryset = build()
    if not _plain_rows(queryset):
        return list(queryset)
    compiler = queryset.query.get_compiler(using)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return []
    statement = _checked(compiler, sql, list(params), shape, using)
    if statement is None:
        return list(queryset)
    statements.put(key, statement)
    return _run(statement, using, list(params))


def shaped_value(kind: tuple, shape: Shape | None, run: Callable[[], Any]) -> Any:
    """The first column of the first row (None without a row) of the one statement `run()`
    executes, which returns that value; kept by `shape` and `kind` as `shaped_rows` keeps its.

    For counts and single ids, whose values need no converting; the statement is read as it
    is sent, so Django builds it as it always does (an aggregate wraps its query).
    """
    statements = cache()
    if shape is None or statements.size <= 0:
        return run()
    using = router.db_for_read(Resource)
    key = (using, kind, shape.key)
    statement = statements.get(key)
    if statement is not None:
        with connections[using].cursor() as cursor:
            cursor.execute(statement.sql, _params(statement, shape, using))
            row = cursor.fetchone()
        return row[0] if row else None
    sent: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connections[using].execute_wrapper(capture):
        value = run()
    if len(sent) == 1:
        sql, params = sent[0]
        compiler = Query(Resource).get_compiler(using)
        emits = _emits(compiler, list(params or ()), shape, using)
        if emits is not None:
            statements.put(key, _Statement(sql=sql, emits=emits, converters={}, columns=[]))
    return value


def _plain_rows(queryset: QuerySet) -> bool:
    """Whole model instances and nothing else: what `_run` rebuilds from the columns alone."""
    query = queryset.query
    return (
        queryset._iterable_class is ModelIterable
        and not query.annotations
        and not query.extra
        and not query.select_related
        and not query.deferred_loading[0]
        and query.default_cols
    )


def _params(statement: _Statement, shape: Shape, using: str) -> list:
    connection = connections[using]
    compiler = Query(Resource).get_compiler(connection=connection)
    params: list = []
    for leaf, emits in zip(shape.leaves, statement.emits, strict=True):
        if emits:
            params += leaf.params(compiler, connection)
    return params


def _checked(compiler: Any, sql: str, params: list, shape: Shape, using: str) -> _Statement | None:
    """The statement to keep when the shape's leaves give exactly Django's parameters."""
    emits = _emits(compiler, params, shape, using)
    if emits is None:
        return None
    selected = [expression for expression, _, _ in compiler.select]
    if not all(isinstance(expression, Col) for expression in selected):
        return None
    return _Statement(
        sql=sql,
        emits=emits,
        converters=compiler.get_converters(selected),
        columns=[expression.target.attname for expression in selected],
    )


def _emits(compiler: Any, params: list, shape: Shape, using: str) -> tuple[bool, ...] | None:
    """Per leaf, whether it gives parameters, when the leaves give exactly `params` in order."""
    connection = connections[using]
    emits, position = [], 0
    for leaf in shape.leaves:
        given = leaf.params(compiler, connection)
        if _same(params[position : position + len(given)], given):
            emits.append(True)
            position += len(given)
        elif leaf.constant:  # e.g. `deleted = False` written as `NOT deleted`
            emits.append(False)
        else:
            return None
    return tuple(emits) if position == len(params) else None


def _same(found: list, expected: list) -> bool:
    """Equal and of the same types (`0` is not `False`)."""
    return len(found) == len(expected) and all(
        type(a) is type(b) and a == b for a, b in zip(found, expected, strict=True)
    )


def _run(statement: _Statement, using: str, params: list) -> list[Resource]:
    """The statement's rows as Resource instances, converted as the ORM converts them."""
    database = connections[using]
    with database.cursor() as cursor:
        cursor.execute(statement.sql, params)
        found = cursor.fetchall()
    rows = []
    for values in found:
        row = list(values)
        for position, (functions, expression) in statement.converters.items():
            for convert in functions:
                row[position] = convert(row[position], expression, database)
        rows.append(Resource.from_db(using, statement.columns, row))
    return rows


def order_key(order: Sequence[Any]) -> tuple | None:
    """An ORDER BY as part of a shape: field names, or ascending/descending fields; else None."""
    parts: list = []
    for item in order:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, OrderBy) and type(item.expression) is F:
            name = getattr(item.expression, "name")  # noqa: B009 - F's stubs omit it
            parts.append(("F", name, item.descending, item.nulls_first, item.nulls_last))
        else:
            return None
    return tuple(parts)
