"""First pages of chain, `_has` and `:contains` searches walked from the searched type.

A chain or `_has` condition is a semi-join whose inner side is several hops deep. PostgreSQL
plans it from the inner side (every practitioner of a family, every role at their locations...)
and sorts all of that before the first page: the work grows with the matches, and its row
estimates, multiplied through the hops, come out far below the real counts, so it does not
switch to walking the searched type in id order even when a page would fill after a few
hundred resources.

A plain string condition (a common family) is not walked, although it too is read whole before
its first page: deciding costs a count on every such search, the directory's commonest kind, and
cost `Organization?address-city` and `Practitioner?family` 14-18 % of their throughput
(`make bench` against the version before, interleaved), more than the rare common prefix gains.
A `:contains` condition is always walked first, uncounted: its trigram lookup reads every row
holding the substring, of every type and parameter, before the first page, and a count of its
matches, bounded or not, is planned no better (a bounded one as a scan of the type's values
until enough turn up, all of them for a rare substring the planner thinks common). Its probe
reads the walked resource's own string rows; the first window tells how common matches are.

So when the inner side is large (`COMMON` rows or more, counted no further), a page is first
looked for in a window of the next `WALK` live resources of the type, in page order, each one
checked by correlated `EXISTS` probes through the index tables, every level of a chain asked
of the resource at hand (kept inside `CASE`s, where PostgreSQL cannot turn them back into a
join planned from the inner side; `_correlated`). That costs at most
`WALK` probes whatever the directory's size or the inner side's count. When the window holds
fewer matches than a page, the rest of the page comes from the usual search past the window:
the rows are the same, in the same order, as the search alone would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import In, Lookup
from django.db.models.sql import Query
from django.db.models.sql.where import WhereNode

from ..models import ReferenceIndex, Resource, StringIndex
from .compiled import ShapeWriter, shaped_rows, shaped_value
from .index import IndexRows, substring_rows
from .plan import Plan

# Resources of the searched type probed before falling back to the search planned as a whole:
# with a page of 20, the walk fills a page when at least 1 resource in 50 matches.
WALK = 1000
# The first window of a `:contains` walk, which is not counted first: a rare substring costs
# this many probes more than its search as planned.
FIRST_SUBSTRING_WALK = 200
# Windows walked while each holds a match, before the rest comes from the search as planned.
WINDOWS = 4

# Past every resource id (a bigint): the end of a window that reaches the last resource.
_LAST = 2**63 - 1

# Innermost matches from which the walk is tried: below this, the search planned from the inner
# side reads fewer rows than a walk would probe.
COMMON = 2000

# A condition's column on Resource, by the lookup the condition uses.
_OUTER_COLUMNS = {"pk__in": "pk", "logical_id__in": "logical_id"}


@dataclass(eq=False)
class Check:
    """A plan's `column IN (rows)` condition, probed per walked resource; `rows` are left
    unbuilt (`IndexRows`) until a statement is built: a walk whose statements were compiled
    before (search/compiled.py) only reads their values."""

    outer: str  # the condition's column on Resource
    rows: IndexRows | QuerySet
    direct: bool  # one index table
    substring: bool = False  # `:contains`: probed by resource, never from the trigram index

    @property
    def column(self) -> str:
        rows = self.rows
        return rows.fields[0] if isinstance(rows, IndexRows) else rows.query.values_select[0]

    def case(self) -> Case:
        """The probe: `CASE WHEN EXISTS (rows correlated to the resource) ...`."""
        rows = self.rows.queryset() if isinstance(self.rows, IndexRows) else self.rows
        return _probe(self.outer, rows, self.direct, self.substring)

    def write(self, shape: ShapeWriter) -> None:
        """The probe's shape, its parameters in the order of `case()`'s SQL: `EXISTS`' own
        `SELECT 1`, the rows' conditions (the correlation takes none), `THEN` and `ELSE`."""
        shape.part("check", self.outer, self.column, self.direct, self.substring)
        shape.value(Value(1)).rows(self.rows).value(Value(True)).value(Value(False))


def probes(plan: Plan) -> list[Check] | None:
    """The plan's conditions as per-resource probes, when one is a chain or `_has` condition
    with many innermost matches, a `:contains` condition, or a `_has` whose
    few innermost matches fan out to many referrers; else None.

    PostgreSQL only: the planning this works around is its own, and the extra `CASE`/`EXISTS`
    level would take SQLite's parser past its nesting limit on the deepest chains allowed.
    """
    if connection.vendor != "postgresql":
        return None
    found = [_semi_join(condition) or _substring(condition) for condition in plan.conditions]
    deep = [one for one in found if one and _deep(one)]
    substrings = [one for one in found if one and one.substring]
    if not deep and not substrings:
        return None
    if not substrings and not any(_inner_is_large(one.rows) or _fans_out(one.rows) for one in deep):
        return None
    checks = []
    for check in found:
        if check is None:  # OR'ed, negated or not a semi-join: the walk cannot check it
            return None
        checks.append(_level_by_level(check) if _deep(check) else check)
    return checks


def _level_by_level(check: Check) -> Check:
    """The check with its nested levels asked of each walked resource (`_correlated`)."""
    rows = check.rows
    if not isinstance(rows, QuerySet):  # unbuilt rows read one index table: nothing nested
        return check
    correlated = rows.all()
    correlated.query = _correlated(rows.query)
    return Check(check.outer, correlated, check.direct)


def _semi_join(condition: Q) -> Check | None:
    """A plain `column IN (subquery)` condition as a check, else None."""
    if condition.negated or len(condition.children) != 1:
        return None
    child: object = condition.children[0]
    if not isinstance(child, tuple) or child[0] not in _OUTER_COLUMNS:
        return None
    rows = child[1]
    if isinstance(rows, IndexRows):
        selected = len(rows.fields)
    elif isinstance(rows, QuerySet) and not rows.query.is_sliced:
        selected = len(rows.query.values_select)
    else:
        return None
    if selected != 1:
        return None
    return Check(_OUTER_COLUMNS[child[0]], rows, isinstance(rows, IndexRows))


def _substring(condition: Q) -> Check | None:
    """A `:contains` condition as a check on its rows (search/index/string.py), else None."""
    rows = substring_rows(condition)
    return None if rows is None else Check("pk", rows, direct=True, substring=True)


def _deep(found: Check) -> bool:
    """A chain or `_has`: reference rows whose own condition is a further subquery."""
    return not found.direct and found.rows.model is ReferenceIndex


def _leaves(query: Query) -> Iterator[Query]:
    """The innermost subqueries of a chain: index rows whose conditions are plain values."""
    subqueries = list(_subqueries(query.where))
    if not subqueries:
        yield query
    for subquery in subqueries:
        yield from _leaves(subquery)


def _subqueries(node: object) -> Iterator[Query]:
    if isinstance(node, WhereNode):
        for child in node.children:
            yield from _subqueries(child)
    elif isinstance(node, Lookup) and isinstance(node.rhs, Query):
        yield node.rhs


def _inner_is_large(rows: IndexRows | QuerySet) -> bool:
    """Whether an innermost condition of the chain matches `COMMON` rows or more.

    Counted from its index alone, no further than `COMMON`. A few innermost matches that fan
    out (a city's locations, their many roles) are not seen here, but by `_fans_out`, for the
    one shape where it was measured to pay.
    """
    if isinstance(rows, IndexRows):  # not deep: `_deep` picks built reference rows only
        return False
    return any(_common(leaf) for leaf in _leaves(rows.query))


def _common(query: Query) -> bool:
    """Whether `query` selects at least `COMMON` rows (counted no further), the count's
    statement compiled once per shape.

    Fewer innermost matches, and planning from the inner side costs little: its work grows
    with those rows.
    """
    model = query.model
    if model is None:
        return False

    def count() -> int:
        rows = model._default_manager.all()
        rows.query = query.clone()
        return rows[:COMMON].count()

    shape = ShapeWriter("walk-count", COMMON).rows(query).shape()
    return shaped_value(("walk-count",), shape, count) >= COMMON


def _fans_out(rows: IndexRows | QuerySet) -> bool:
    """Whether the reference level `rows` are picked from picks `COMMON` rows or more by their
    targets (counted no further).

    That is a `_has` ending in a chain: a city's few locations (few innermost matches) that
    many roles refer to (the level), so a page fills after few walked resources. Only the level
    right under `rows` is looked at.
    """
    if isinstance(rows, IndexRows):
        return False
    for lookup in _anded_lookups(rows.query.where):
        level = lookup.rhs
        if not isinstance(level, Query) or level.model is not ReferenceIndex:
            continue
        if any(
            inner.lhs.target.column == "target_id" and isinstance(inner.rhs, Query)
            for inner in _anded_lookups(level.where)
        ) and _common(level):
            return True
    return False


def _anded_lookups(node: WhereNode) -> Iterator[Lookup]:
    if node.negated or node.connector != "AND":
        return
    for child in node.children:
        if isinstance(child, WhereNode):
            yield from _anded_lookups(child)
        elif isinstance(child, Lookup) and hasattr(child.lhs, "target"):
            yield child


def _correlated(query: Query) -> Query:
    """A copy of `query` whose nested `column IN (subquery)` conditions are each asked of the
    row at hand: `CASE WHEN EXISTS (subquery AND its column = this row's column)`.

    Left as `IN`, PostgreSQL pulls the levels up into one join and, its string estimates
    being one row whatever they match, drives each probe from the innermost side: a city's
    locations, then every role at them (157,516 for New York on the million), for every walked
    practitioner (15 s, the statement timeout). Asked level by level from the walked resource
    (its roles, their locations, each location's city), a probe costs a few index lookups
    (25 ms for a page there). The same turned a nested `_has` through a common family from
    200-540 ms into 28-51 ms on the million, where a common specialty's `_has` stayed at
    8-41 ms either way (`benchsearch`, three alternated runs).

    Each level is asked by a range of one value (see `_asked`), which PostgreSQL cannot hash:
    a probe is an index seek on the level's (type, param, target or code, resource) keys. An
    innermost string condition is the exception: its index is in value order, so a probe per
    row would scan every matching value; `=` lets PostgreSQL hash its matches once per
    statement (a city's 5,432 locations). The queries and where trees on the way are copied;
    the plan's own are left as they were.
    """
    copied = query.clone()
    copied.where = _correlated_node(query.where, copied)
    return copied


def _correlated_node(node: Any, enclosing: Query) -> Any:
    if isinstance(node, WhereNode):
        tree = node.create(connector=node.connector, negated=node.negated)
        tree.children = [_correlated_node(child, enclosing) for child in node.children]
        return tree
    inner = node.rhs if isinstance(node, In) else None
    model = inner.model if isinstance(inner, Query) else None
    # Only a plain selection of one column can take the correlation (a sliced one, e.g. a
    # `:contains` lookup's bounded matches, is left as it is).
    if inner is None or model is None or inner.is_sliced or len(inner.values_select) != 1:
        return node
    rows = model._default_manager.all()
    rows.query = _correlated(inner)
    hashable = model is StringIndex and _leaves_only(inner)
    found = _asked(rows, node.lhs.target.attname, hashable=hashable)
    return found.resolve_expression(query=enclosing, allow_joins=False, reuse=None)


def _leaves_only(query: Query) -> bool:
    """Whether `query`'s conditions are plain values (no further subquery)."""
    return not any(True for _ in _subqueries(query.where))


def _probe(outer: str, rows: QuerySet, direct: bool, substring: bool = False) -> Case:
    if not substring:  # one index table: PostgreSQL may hash its matches once, or probe
        return _asked(rows, outer, hashable=direct)
    column = rows.query.values_select[0]
    # Equality, for an estimate of one resource's rows (as a range of one value, a small type's
    # values were scanned whole per probe: 6.2 s a window, 42k organizations), and a range
    # beside it, which keeps PostgreSQL from hashing every match once instead.
    return _exists(rows.filter(**{column: OuterRef(outer), f"{column}__gte": OuterRef(outer)}))


def _asked(rows: QuerySet, outer: str, *, hashable: bool) -> Case:
    """Whether any of `rows` has its selected column equal to the enclosing row's `outer`.

    Not `hashable`, the equality is written as a range of one value: PostgreSQL turns
    `column = outer` into a hashed subplan, which reads the whole inner side once, the very work
    the walk is to avoid; a range cannot be hashed, so each resource is probed through the index.
    """
    column = rows.query.values_select[0]
    if hashable:
        return _exists(rows.filter(**{column: OuterRef(outer)}))
    return _exists(
        rows.filter(**{f"{column}__gte": OuterRef(outer), f"{column}__lte": OuterRef(outer)})
    )


def _exists(correlated: QuerySet) -> Case:
    """`CASE WHEN EXISTS (correlated) THEN true ELSE false END`: inside a `CASE`, PostgreSQL
    cannot pull the subquery up into a join planned from its inner side."""
    found_one = When(Exists(correlated), then=Value(True))
    return Case(found_one, default=Value(False), output_field=BooleanField())


def probed_rows(
    plan: Plan,
    checks: list[Check],
    after: tuple[str, object] | None,
    ascending: bool,
    limit: int,
    rest: Callable[[tuple[str, object] | None, int], list[Resource]],
) -> list[Resource]:
    """Up to `limit` matches past `after` in id order: from walked windows, then `rest`.

    A window that held a match is followed by the next (at most `WINDOWS`): matches are that
    common, so the walk will soon fill the page. With a `:contains` check (walked uncounted),
    only while the windows left would fill the page at the rate of the last: past the windows
    the search as planned reads every match anyway. `rest(after, limit)` gives matches
    strictly past the last window.
    """
    found: list[Resource] = []
    paced = any(check.substring for check in checks)
    size = min(FIRST_SUBSTRING_WALK, WALK) if paced else WALK
    for walked in range(1, WINDOWS + 1):
        more, end = _window(plan, checks, after, ascending, limit - len(found), size)
        found += more
        if len(found) >= limit or end is None:  # a full page, or no resource left past it
            return found
        after = ("gt" if ascending else "lt", end)
        # Matches expected from the windows left, at the rate of this one.
        expected = len(more) * WALK * (WINDOWS - walked) / size
        if not more or (paced and expected < limit - len(found)):
            break
        size = WALK
    return found + rest(after, limit - len(found))


def _window(
    plan: Plan,
    checks: list[Check],
    after: tuple[str, object] | None,
    ascending: bool,
    limit: int,
    size: int,
) -> tuple[list[Resource], int | None]:
    """Matches among the next `size` resources past `after`, and the last of those (None when
    fewer than `size` were left, the window reaching the end, or when the page is full).

    The window's end is a subquery of the walk's own statement (read once, before the walk);
    it is asked for on its own only when the page goes on past the window. Both statements
    are compiled once per shape (search/compiled.py): the checks' shapes, the direction, the
    page's and window's sizes, whether there is an `after`.
    """
    sign = "" if ascending else "-"
    live = [Q(resource_type=plan.resource_type, deleted=False)]
    if after is not None:
        live.append(Q(**{f"pk__{after[0]}": after[1]}))
    # Fewer than `size` left: the window runs to the last resource.
    last = Value(_LAST if ascending else 0)

    def ends() -> QuerySet:
        rows = Resource.objects.all()
        for condition in live:
            rows = rows.filter(condition)
        return rows.order_by(sign + "pk").values("pk")[size - 1 : size]

    def build() -> QuerySet[Resource]:
        edge = Coalesce(Subquery(ends()), last, output_field=BigIntegerField())
        window = Resource.objects.all()
        for condition in live:
            window = window.filter(condition)
        window = window.filter(**{f"pk__{'lte' if ascending else 'gte'}": edge})
        probed = window.filter(*(check.case() for check in checks))
        page_ids = probed.order_by(sign + "pk").values("pk")[:limit]
        return Resource.objects.filter(pk__in=page_ids).order_by(sign + "pk")

    shape = ShapeWriter("walk-window", sign, size, limit)
    shape.conditions(Resource, live).conditions(Resource, live).value(last)
    for check in checks:
        check.write(shape)
    substring = any(check.substring for check in checks)
    with _probing_joins(_PROBING_SUBSTRINGS if substring else _PROBING):
        found = shaped_rows(("walk-window",), shape.shape(), build)
    if len(found) >= limit:
        return found, None
    end_shape = ShapeWriter("walk-end", sign, size).conditions(Resource, live).shape()
    return found, shaped_value(("walk-end",), end_shape, lambda: _first(ends()))


def _first(rows: QuerySet) -> Any:
    found = list(rows.values_list("pk", flat=True))
    return found[0] if found else None


# Planner settings for the walk's statement alone: inside a probe, a merge join read a common
# specialty's index rows from their start for every organization walked (52 ms where index
# probes took 9 ms, 200k-practitioner directory); hash joins would read the inner side whole.
_PROBING = {"enable_hashjoin": "off", "enable_mergejoin": "off"}
# With a `:contains` check, no bitmap scans either: its probe was planned from the trigram index
# (GIN answers by bitmap only), a scan of every row holding the substring per walked resource
# (2.4 s a window for `name:contains=ross`, 1M practitioners), not from the resource's own rows.
# Nor JIT: a window of a rare substring is priced as a walk of the whole type, past
# `jit_above_cost`, and compiling took 11 of its 14 ms.
_PROBING_SUBSTRINGS = {**_PROBING, "enable_bitmapscan": "off", "jit": "off"}


@contextmanager
def _probing_joins(settings: dict[str, str]) -> Iterator[None]:
    """Nested-loop joins only for the statements inside (`set_config` local to a transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        names = list(settings)
        # Read before set: a select list is evaluated left to right, one round trip for both.
        reads = ", ".join("current_setting(%s)" for _ in names)
        sets = ", ".join("set_config(%s, %s, true)" for _ in names)
        pairs = [value for item in settings.items() for value in item]
        cursor.execute(f"SELECT {reads}, {sets}", [*names, *pairs])
        before = dict(zip(names, cursor.fetchone()[: len(names)], strict=True))
        yield
        # Released into an enclosing transaction, they would outlive the statement; on an error
        # the rollback to the savepoint undoes them.
        _set(cursor, before)


def _set(cursor: Any, settings: dict[str, str]) -> None:
    pairs = [value for item in settings.items() for value in item]
    cursor.execute("SELECT " + ", ".join("set_config(%s, %s, true)" for _ in settings), pairs)
