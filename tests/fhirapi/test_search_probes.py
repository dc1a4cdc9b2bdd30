"""Pages walked from the searched type (search/probes.py) are the pages of the search itself.

The walk only starts past `COMMON` innermost matches (`:contains` conditions are walked
uncounted), far more than a hand-made directory holds, so these tests lower the bound: every
page is then cut by the walk, by its fallback past a window of one or two resources, or both,
and must hold exactly the pages of the search planned as a whole, in both directions. The
walk's statements are kept by shape (search/compiled.py): each test's first page compiles them,
its later pages run them with the cursor's values.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory.search import SearchRequest, compiled, probes, search
from tests.fhirapi.test_search_chains import _pages, directory, ids  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the walk is PostgreSQL's"),
]

QUERIES = [
    "PractitionerRole?practitioner.name=susi",
    "PractitionerRole?practitioner.name=susi,bob",
    "PractitionerRole?location.address-city=capital,springfield",
    "PractitionerRole?location.organization.name=acme",
    "PractitionerRole?practitioner.name=susi&location.address-city=spring",
    "PractitionerRole?practitioner.name=nobody",
    "Organization?_has:PractitionerRole:organization:practitioner.name=susi",
    "Location?_has:PractitionerRole:location:practitioner.name=susi",
    "Practitioner?_has:PractitionerRole:practitioner:location.organization.name=acme",
    "Practitioner?_has:PractitionerRole:practitioner:location.address-city=capital",
    "Organization?_has:Location:organization:_has:PractitionerRole:location:practitioner.name=bob",
    "Organization?_has:PractitionerRole:organization:practitioner.name=nobody",
    # A string condition beside a chain.
    "PractitionerRole?practitioner.name=susi,bob&location.address-city=spring",
]
# `:contains` conditions (search/index/string.py), alone, OR'ed, beside plain strings, chains
# and `_has`; with no match (walked too: the first window finds none, the search as planned
# then finds none either).
SUBSTRINGS = [
    "Practitioner?name:contains=o",
    "Practitioner?name:contains=mit",
    "Practitioner?name:contains=mit,ob",
    "Organization?name:contains=e",
    "Organization?name:contains=cme&address-city=spring",
    "Location?address-city:contains=i&name:contains=o",
    "Organization?name:contains=e&_has:PractitionerRole:organization:practitioner.name=susi",
    "PractitionerRole?practitioner.name:contains=o&location.address-city:contains=ring",
    "Practitioner?name:contains=nobody",
]
# Plain string searches are never walked, nor is their match count asked for.
PLAIN = ["Practitioner?name=s", "Organization?name=acme", "Location?address-city=spring,capital"]


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    """Each test compiles its walks' statements first (search/compiled.py), then reuses them
    on its later pages, whatever ran before it."""
    settings.FHIR_SEARCH_SHAPE_CACHE = compiled.DEFAULT_CACHE_SIZE
    compiled.cache().clear()
    yield
    compiled.cache().clear()


def _all_pages(api, query: str) -> tuple[list[list[str]], list[list[str]]]:
    """Pages of one match each, forward, then backward from the last page."""
    forward = _pages(api, f"{query}&_count=1", "next")
    bundle = api.get(f"/fhir/{query}&_count=1").json()
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    if "next" not in links:
        return forward, []
    return forward, _pages(api, links["next"].partition("/fhir/")[2], "previous")


def _walked_and_planned(
    api, monkeypatch, query: str, common: int, walk: int
) -> tuple[tuple, tuple, list[str]]:
    """The pages walked (`COMMON` and `WALK` lowered) and planned (never walked), both ways,
    and the SQL of the walked ones."""
    _walks(monkeypatch, None)
    planned = _all_pages(api, query)
    _walks(monkeypatch, common)
    monkeypatch.setattr(probes, "WALK", walk)
    with CaptureQueriesContext(connection) as captured:
        walked = _all_pages(api, query)
    return walked, planned, [q["sql"] for q in captured.captured_queries]


_SUBSTRING = probes._substring


def _walks(monkeypatch, common: int | None) -> None:
    """Walks from `common` innermost matches, `:contains` ones uncounted; None: no walk."""
    monkeypatch.setattr(probes, "COMMON", 10**9 if common is None else common)
    monkeypatch.setattr(probes, "_substring", _SUBSTRING if common else lambda condition: None)


@pytest.mark.parametrize("walk", [1, 2, 1000])
@pytest.mark.parametrize("query", QUERIES + SUBSTRINGS)
def test_walked_pages_are_the_search_pages(api, directory, monkeypatch, query, walk):  # noqa: F811
    walked, planned, sql = _walked_and_planned(api, monkeypatch, query, 1, walk)
    assert walked == planned
    # The walk did run: its probes are in the SQL (a query with no innermost match never walks,
    # unless it has a `:contains` condition).
    probed = any("CASE WHEN EXISTS" in one for one in sql)
    assert probed == ("nobody" not in query or ":contains" in query)


@pytest.mark.parametrize(
    "form",
    [
        "PractitionerRole?practitioner.name={}",
        "Organization?_has:PractitionerRole:organization:practitioner.name={}",
        "PractitionerRole?practitioner.name={}&location.address-city=spring",
        "Practitioner?name:contains={}",
    ],
)
def test_a_walk_of_a_kept_shape_compiles_nothing(directory, monkeypatch, form):  # noqa: F811
    def matches(name: str) -> list[str]:
        resource_type, _, query = form.format(name).partition("?")
        params = [tuple(pair.split("=")) for pair in query.split("&")]
        return [e.row.logical_id for e in search(SearchRequest(resource_type, params)).entries]

    _walks(monkeypatch, None)
    planned = {name: matches(name) for name in ("susi", "bob")}
    assert planned["susi"] and planned["bob"] and planned["susi"] != planned["bob"]
    _walks(monkeypatch, 1)
    assert matches("susi") == planned["susi"]  # walked: its count, window and end compiled

    def compile_refused(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr("django.db.models.sql.compiler.SQLCompiler.as_sql", compile_refused)
    monkeypatch.setattr(
        "django.db.models.sql.compiler.SQLAggregateCompiler.as_sql", compile_refused
    )
    with CaptureQueriesContext(connection) as captured:
        assert matches("bob") == planned["bob"]
    assert any("CASE WHEN EXISTS" in q["sql"] for q in captured.captured_queries)


@pytest.mark.parametrize("query", PLAIN)
def test_a_plain_string_search_is_one_statement(api, directory, monkeypatch, query):  # noqa: F811
    monkeypatch.setattr(probes, "COMMON", 1)
    with CaptureQueriesContext(connection) as captured:
        assert api.get(f"/fhir/{query}").status_code == 200
    data = [q["sql"] for q in captured.captured_queries if "directory_" in q["sql"]]
    assert len(data) == 1, data
    assert "CASE WHEN EXISTS" not in data[0] and "COUNT(" not in data[0]


def test_a_substring_is_walked_uncounted(api, directory, monkeypatch):  # noqa: F811
    # No count statement, whatever `COMMON`; the first window (one resource) holds no match,
    # so the page is finished by the search as planned past it.
    monkeypatch.setattr(probes, "WALK", 1)
    with CaptureQueriesContext(connection) as captured:
        assert ids(api, "Practitioner?name:contains=o") == {"pr-bob"}
    data = [q["sql"] for q in captured.captured_queries if "directory_" in q["sql"]]
    assert not any("COUNT(" in one for one in data), data
    assert "CASE WHEN EXISTS" in data[0]
    assert "LIKE" in data[-1] and "CASE WHEN EXISTS" not in data[-1]
    walk = next(q["sql"] for q in captured.captured_queries if "set_config" in q["sql"])
    assert "'enable_bitmapscan', 'off'" in walk and "'jit', 'off'" in walk


def test_a_small_inner_side_keeps_the_planned_search(api, directory, monkeypatch):  # noqa: F811
    # One name row starts with "susi" (her given name).
    query = "PractitionerRole?practitioner.name=susi"
    monkeypatch.setattr(probes, "COMMON", 2)
    with CaptureQueriesContext(connection) as captured:
        _all_pages(api, query)
    assert not any("CASE WHEN EXISTS" in q["sql"] for q in captured.captured_queries)
    monkeypatch.setattr(probes, "COMMON", 1)
    with CaptureQueriesContext(connection) as captured:
        _all_pages(api, query)
    assert any("CASE WHEN EXISTS" in q["sql"] for q in captured.captured_queries)


def test_the_walks_planner_settings_end_with_it(api, directory, monkeypatch):  # noqa: F811
    # The test runs in one transaction, as a request in ATOMIC_REQUESTS would: a setting left
    # behind would steer every later statement of it.
    monkeypatch.setattr(probes, "COMMON", 1)
    with CaptureQueriesContext(connection) as captured:
        _all_pages(api, "Organization?_has:PractitionerRole:organization:practitioner.name=susi")
    assert any("'enable_hashjoin', 'off'" in q["sql"] for q in captured.captured_queries)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
        )
        assert cursor.fetchone() == ("on", "on")


# One Location is in Capital City, and two roles are there: with COMMON at 2 the innermost
# matches stay under it and the roles reach it.
FANNED_OUT = [
    "Practitioner?_has:PractitionerRole:practitioner:location.address-city=capital",
    "Organization?_has:PractitionerRole:organization:location.address-city=capital",
    # Beside a plain condition.
    "Practitioner?_has:PractitionerRole:practitioner:location.address-city=capital&name=s,b",
]
# The fanned-out level asked of each walked resource's referrers: an EXISTS among the
# conditions of a probe's own subquery (not a sibling probe's, which follows an `END`).
NESTED = re.compile(r'EXISTS\(SELECT 1 AS "a" FROM "\w+" \w+ WHERE \([^()]*AND CASE WHEN EXISTS')


@pytest.mark.parametrize("walk", [1, 2, 1000])
@pytest.mark.parametrize("query", FANNED_OUT)
def test_few_inner_matches_fanning_out_are_walked(api, directory, monkeypatch, query, walk):  # noqa: F811
    walked, planned, sql = _walked_and_planned(api, monkeypatch, query, 2, walk)
    assert walked == planned
    assert any(sum(map(len, pages)) for pages in planned)
    assert any(NESTED.search(one) for one in sql)
    # The fallback past the windows is the search as planned: the plan's own conditions were
    # not rewritten by the walk.
    assert not any("CASE WHEN" in one for one in sql if "CASE WHEN EXISTS" not in one)


@pytest.mark.parametrize("query", FANNED_OUT)
def test_a_fan_out_under_many_inner_matches_is_asked_level_by_level(
    api,
    directory,  # noqa: F811
    monkeypatch,
    query,
):
    """Many innermost matches (every location of a big city) do not hide the fan-out: probed
    as planned, each walked resource read every role at them (a statement timeout on the
    million)."""
    walked, planned, sql = _walked_and_planned(api, monkeypatch, query, 1, 2)
    assert walked == planned
    assert any(NESTED.search(one) for one in sql)


@pytest.mark.parametrize(
    "query, common",
    [
        (FANNED_OUT[0], 3),  # two roles in Capital City: under it
        # Bob's two roles are a level deeper than the one looked at (under his locations).
        (
            "Organization?_has:Location:organization:_has:PractitionerRole:location:practitioner.name=bob",
            2,
        ),
    ],
)
def test_inner_matches_that_do_not_fan_out_keep_the_planned_search(
    api,
    directory,  # noqa: F811
    monkeypatch,
    query,
    common,
):
    monkeypatch.setattr(probes, "COMMON", common)
    with CaptureQueriesContext(connection) as captured:
        _all_pages(api, query)
    assert not any("CASE WHEN EXISTS" in q["sql"] for q in captured.captured_queries)
