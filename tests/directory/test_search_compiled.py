"""Search statements kept by shape (directory/search/compiled.py): the same shape with other
values answers for those values, what cannot be described runs uncached, and the kept
statements are bounded. That kept statements answer exactly as compiled ones, over every
conformance search, is tests/conformance/test_compiled_shapes.py."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.test.utils import CaptureQueriesContext

from directory.search import SearchRequest, compiled, search
from tests.factories import NPI_SYSTEM, LocationFactory, PractitionerFactory, make_npi

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    settings.FHIR_SEARCH_SHAPE_CACHE = compiled.DEFAULT_CACHE_SIZE
    compiled.cache().clear()
    yield
    compiled.cache().clear()


def _ids(params, resource_type="Practitioner") -> list[str]:
    return [e.row.logical_id for e in search(SearchRequest(resource_type, params)).entries]


def _matches(api, query: str) -> list[str]:
    response = api.get(f"/fhir/{query}")
    assert response.status_code == 200, response.content
    return [e["resource"]["id"] for e in response.json().get("entry", [])]


def _practitioner(logical_id: str, family: str, npi: str) -> None:
    PractitionerFactory.create(
        id=logical_id,
        name=[{"family": family}],
        identifier=[{"system": NPI_SYSTEM, "value": npi}],
    )


def test_each_npi_finds_its_own_practitioner_through_one_kept_statement(api):
    npis = [make_npi(9000 + i) for i in range(3)]
    for i, npi in enumerate(npis):
        _practitioner(f"p{i}", f"Name{i}", npi)
    kept = compiled.cache()
    for i, npi in enumerate(npis):
        assert _matches(api, f"Practitioner?identifier={NPI_SYSTEM}|{npi}") == [f"p{i}"]
    assert _matches(api, f"Practitioner?identifier={NPI_SYSTEM}|{make_npi(9999)}") == []
    assert len(kept) == 1  # one shape: system|code
    assert kept.hits >= 3


def test_a_kept_statement_is_one_query_and_no_orm_compile(monkeypatch):
    _practitioner("p1", "Smith", make_npi(1))
    _practitioner("p2", "Jones", make_npi(2))
    assert _ids([("family", "smi")]) == ["p1"]  # compiles and keeps

    def compile_refused(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr("django.db.models.sql.compiler.SQLCompiler.as_sql", compile_refused)
    with CaptureQueriesContext(connection) as captured:
        assert _ids([("family", "jon")]) == ["p2"]
    assert len(captured.captured_queries) == 1


@pytest.mark.parametrize(
    "first, then, expected",
    [
        ("Smi", "%", []),  # LIKE's wildcards are escaped in the new value, not only the first
        ("Smi", "S_ith", []),
        ("Smi", "100%", ["percent"]),
        ("Smi", "o'b", ["quote"]),
    ],
)
def test_string_values_are_prepared_as_django_prepares_them(first, then, expected):
    _practitioner("smith", "Smith", make_npi(1))
    _practitioner("percent", "100% Care", make_npi(2))
    _practitioner("quote", "O'Brien", make_npi(3))
    assert _ids([("family", first)]) == ["smith"]
    hits = compiled.cache().hits
    assert _ids([("family", then)]) == expected
    assert compiled.cache().hits == hits + 1


def test_dates_and_id_lists_take_the_new_values():
    _practitioner("a", "A", make_npi(1))
    _practitioner("b", "B", make_npi(2))
    assert _ids([("_lastUpdated", "gt2000-01-01")]) == ["a", "b"]
    assert _ids([("_lastUpdated", "gt2999-01-01")]) == []
    assert _ids([("_lastUpdated", "lt2000-01-01T10:00:00+02:00")]) == []
    assert _ids([("_id", "a,b")]) == ["a", "b"]
    assert _ids([("_id", "b,zz")]) == ["b"]
    assert _ids([("_id", "a,a")]) == ["a"]  # a repeat is another shape: `IN` drops it
    assert _ids([("_id", "b,b")]) == ["b"]


def test_cursor_pages_with_other_values_are_right():
    for i in range(5):
        _practitioner(f"p{i}", "Same", make_npi(i + 1))
    pages, params = [], [("family", "same"), ("_count", "2")]
    while params is not None:
        result = search(SearchRequest("Practitioner", params))
        pages.append([e.row.logical_id for e in result.entries])
        params = result.next_params
    assert pages == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    assert compiled.cache().hits >= 1  # the third page reuses the second's statement


def test_kept_statements_are_bounded_least_recently_used_first(settings):
    settings.FHIR_SEARCH_SHAPE_CACHE = 3
    _practitioner("p1", "Smith", make_npi(1))
    shapes = [[("family", "smith")] + [("given", "x")] * n for n in range(6)]
    for params in shapes:
        search(SearchRequest("Practitioner", params))
    kept = compiled.cache()
    assert len(kept) == 3
    hits = kept.hits
    search(SearchRequest("Practitioner", shapes[-1]))  # among the last three: kept
    assert kept.hits == hits + 1
    search(SearchRequest("Practitioner", shapes[0]))  # evicted: compiled again
    assert kept.hits == hits + 1 and len(kept) == 3


def test_nothing_is_kept_when_switched_off(settings):
    settings.FHIR_SEARCH_SHAPE_CACHE = 0
    _practitioner("p1", "Smith", make_npi(1))
    assert _ids([("family", "smith")]) == ["p1"]
    assert len(compiled.cache()) == 0


def test_a_very_long_statement_is_run_but_not_kept():
    _practitioner("p1", "Smith", make_npi(1))
    many = ",".join(f"id-{i}" for i in range(compiled.MAX_SQL_CHARS // 3)) + ",p1"
    assert _ids([("_id", many)]) == ["p1"]
    assert len(compiled.cache()) == 0


def test_near_runs_uncached():
    LocationFactory.create(id="here")
    assert _ids([("near", "42.37|-71.1|10|km")], "Location") == ["here"]
    assert len(compiled.cache()) == 0


def test_expressions_are_not_described_by_shape():
    assert compiled.shape_of([Q(pk__in=RawSQL("SELECT 1", []))]) is None
    assert compiled.shape_of([Q(resource__logical_id="x")]) is None  # not a column of Resource
    assert compiled.shape_of([Q(logical_id__lower="x")]) is None  # a transform
    assert compiled.shape_of([Q(logical_id="x")]) is not None


def test_shapes_differ_where_the_sql_does():
    def key(*conditions):
        return compiled.shape_of(list(conditions)).key

    assert key(Q(logical_id="a")) == key(Q(logical_id="b"))
    assert key(Q(logical_id__in=["a", "b"])) != key(Q(logical_id__in=["a", "a"]))
    assert key(Q(logical_id__in=["a", "b"])) != key(Q(logical_id__in=["a", "b", "c"]))
    assert key(Q(deleted=False)) != key(Q(deleted=True))  # written into the SQL text
    assert key(Q(logical_id="a")) != key(~Q(logical_id="a"))
    assert key(Q(logical_id="a") | Q(version_id=1)) != key(Q(logical_id="a") & Q(version_id=1))
