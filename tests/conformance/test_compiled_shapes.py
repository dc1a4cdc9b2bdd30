"""Statements kept by search shape (directory/search/compiled.py) answer exactly as the
statements Django compiles for each request.

Every conformance search (each Plan-Net parameter in its value forms, chains, `_has`, includes,
`near`) runs three ways over the loaded examples: uncached (`FHIR_SEARCH_SHAPE_CACHE=0`), then
cached, where a shape an earlier search of the group compiled is run with this search's values,
then cached again, from a kept statement. Every page (its cursor followed) must be the same: the
entries with their stored text, totals, links, and the SQL sent to the database, byte for byte
(snapshot ids, clock readings and savepoint names masked: they differ between any two runs).
"""

from __future__ import annotations

import json
import re

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory.search import CURSOR_SALT, SearchRequest, compiled, search
from directory.stored import StoredResource

from . import cases

pytestmark = pytest.mark.django_db

GROUPS = {
    "parameters": cases.parameter_cases,
    "chains": cases.chain_cases,
    "has": cases.has_cases,
    "includes": lambda: cases.iterate_cases() + cases.wildcard_cases(),
    "near": cases.near_cases,
}
# Result parameters added to each case: default pages, cursors on small pages, keyset pages on
# `_id` backwards, snapshot pages, counted totals, count only.
VARIANTS = {
    "plain": (),
    "paged": (("_count", "2"),),
    "by-id-descending": (("_sort", "-_id"), ("_count", "2")),
    "snapshot": (("_sort", "_lastUpdated"), ("_count", "1")),
    "total": (("_total", "accurate"), ("_count", "3")),
    "count-only": (("_summary", "count"),),
}
MAX_PAGES = 60
_CLOCK = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}(?::?\d{2})?)?")
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def _masked(sql: str) -> str:
    return _SAVEPOINT.sub("<savepoint>", _UUID.sub("<uuid>", _CLOCK.sub("<clock>", sql)))


def _cursor_state(params: list[tuple[str, str]] | None) -> object:
    """Link parameters with the cursor read back (a snapshot's id differs between runs)."""
    if params is None:
        return None
    state = []
    for name, value in params:
        if name == "_cursor":
            decoded = signing.loads(value, salt=CURSOR_SALT)
            value = json.dumps({k: v for k, v in decoded.items() if k != "s"}, sort_keys=True)
        state.append((name, value))
    return state


def _content(content: object) -> str:
    if isinstance(content, StoredResource):
        return content.text
    return json.dumps(content, sort_keys=True)


def _page_facts(result) -> dict:
    return {
        "entries": [
            (
                e.mode,
                e.row.pk,
                e.row.resource_type,
                e.row.logical_id,
                e.row.version_id,
                e.row.last_updated,
                e.row.deleted,
                e.row.sort_name,
                _content(e.content),
                json.dumps(e.extensions, sort_keys=True),
            )
            for e in result.entries
        ],
        "total": result.total,
        "self": result.self_params,
        "next": _cursor_state(result.next_params),
        "previous": _cursor_state(result.previous_params),
        "ignored": result.ignored,
        "summary_count": result.summary_count,
    }


def _run(base: str, params: list[tuple[str, str]]) -> list[dict]:
    """Every page of one search: what it answered and the SQL it sent."""
    pages = []
    for _ in range(MAX_PAGES):
        with CaptureQueriesContext(connection) as captured:
            result = search(SearchRequest(base, params, strict=True))
        facts = _page_facts(result)
        facts["sql"] = [_masked(q["sql"]) for q in captured.captured_queries]
        pages.append(facts)
        if result.next_params is None:
            return pages
        params = result.next_params
    pytest.fail(f"{base}?{params}: still a next link after {MAX_PAGES} pages")


def _difference(cached: list[dict], uncached: list[dict]) -> str:
    """The first fact that differs, for the failure message."""
    for number, (page, expected) in enumerate(zip(cached, uncached, strict=False)):
        for name, value in page.items():
            if value != expected[name]:
                return f"page {number} {name}: {value!r:.2000} != {expected[name]!r:.2000}"
    return f"{len(cached)} pages != {len(uncached)}"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("group", GROUPS)
def test_kept_statements_answer_as_compiled_ones(server, settings, group, variant):
    compiled.cache().clear()
    kept = compiled.cache()
    hits_before = kept.hits
    for case in GROUPS[group]():
        params = [*case.params, *VARIANTS[variant]]
        settings.FHIR_SEARCH_SHAPE_CACHE = 0
        uncached = _run(case.base, params)
        settings.FHIR_SEARCH_SHAPE_CACHE = compiled.DEFAULT_CACHE_SIZE
        first = _run(case.base, params)  # a shape seen earlier in the group: other values
        again = _run(case.base, params)  # the statement kept by the run before
        query = f"{case.base}?{case.query}&{VARIANTS[variant]}"
        assert first == uncached, f"{case.name} {query}: {_difference(first, uncached)}"
        assert again == uncached, f"{case.name} {query}: {_difference(again, uncached)}"
    # The comparison is only worth something if statements were in fact kept and reused.
    # `near` runs uncached (its distance is an expression), `_summary=count` only counts.
    if group != "near" and variant != "count-only":
        assert kept.hits > hits_before, f"no kept statement was used for {group}"
