"""The floor: the least a server could do for the benchmark's queries, as a plain WSGI app.

It answers exactly the benchmark's requests (BENCH_PLAN, a JSON file the runner writes). At
start it asks the project's own search code for each search's SQL; per request it only runs that
SQL as prepared statements on one raw psycopg connection and splices the stored JSON text into a
Bundle. No authentication, no audit, no ORM: what is left is the database and the web server
(the same gunicorn settings and worker class as the server's: keep-alive or not alike).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import psycopg

READ = (
    "SELECT resource_type, logical_id, content FROM directory_resource"
    " WHERE resource_type = %s AND logical_id = %s AND NOT deleted"
)
INCLUDED = (
    "SELECT r.resource_type, r.logical_id, r.content FROM directory_resource r JOIN"
    " (SELECT DISTINCT target_type, target_id FROM directory_referenceindex"
    "  WHERE resource_id = ANY(%s) AND param = ANY(%s) AND NOT external) t"
    " ON r.resource_type = t.target_type AND r.logical_id = t.target_id"
    " WHERE NOT r.deleted AND NOT (r.id = ANY(%s)) ORDER BY r.resource_type, r.id"
)
CREATE = (
    "INSERT INTO directory_resource"
    " (resource_type, logical_id, version_id, last_updated, deleted, content, sort_name)"
    " VALUES ('Organization', %s, 1, %s, false, %s, '') RETURNING id"
)


def compiled_search(path: str) -> dict:
    """The project's SQL for one search: its first page, bounded count and include params."""
    from django.conf import settings

    from directory.search import filtered, parse, totals

    resource_type, _, query = path.partition("?")
    plan = parse(resource_type, parse_qsl(query), strict=True)
    matches = filtered(plan)
    rows = matches.order_by("pk").values_list("id", "resource_type", "logical_id", "content")
    page_sql, page_params = rows[: plan.page_size + 1].query.sql_with_params()
    ids = matches.order_by().values("pk")[: totals.exact_limit() + 1]
    ids_sql, ids_params = ids.query.sql_with_params()
    params = [p for include in plan.includes for p in include.params]
    return {
        "page": (page_sql, list(page_params)),
        # The project's own bounded-count query, compiled by Django: no outside text in it.
        "count": (f"SELECT count(*) FROM ({ids_sql}) t", list(ids_params)),  # noqa: S608
        "include_params": params,
        "page_size": plan.page_size,
        # As the server: a total beyond the first page only when `_total` asks for one.
        "counts": plan.total_mode != "bounded",
        "base": settings.FHIR_BASE_URL,
    }


def route_key(path: str) -> tuple:
    """A search as the floor looks it up: its type and decoded parameters, however quoted."""
    resource_type, _, query = path.partition("?")
    return resource_type, tuple(parse_qsl(query))


def _setup() -> dict:
    import django

    django.setup()
    with open(os.environ["BENCH_PLAN"]) as handle:
        paths = json.load(handle)
    routes = {}
    for path in paths:
        if "?" in path:
            routes[route_key(path)] = compiled_search(path)
    return routes


_routes: dict | None = None
_setup_lock = threading.Lock()
# One connection per thread, as the server's: under threaded workers they would queue on one.
_local = threading.local()


def _db() -> psycopg.Connection:
    if getattr(_local, "connection", None) is None:
        _local.connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return _local.connection


def _entry(resource_type: str, logical_id: str, content: str, mode: str) -> str:
    return (
        f'{{"fullUrl":"{resource_type}/{logical_id}","resource":{content},'
        f'"search":{{"mode":"{mode}"}}}}'
    )


def _search(route: dict) -> str:
    cursor = _db().execute(*route["page"], prepare=True)
    rows = cursor.fetchall()
    more = len(rows) > route["page_size"]
    rows = rows[: route["page_size"]]
    total = None if more else len(rows)
    if more and route["counts"]:
        total = _db().execute(*route["count"], prepare=True).fetchone()[0]
    entries = [_entry(t, i, c, "match") for _, t, i, c in rows]
    if route["include_params"] and rows:
        ids = [row[0] for row in rows]
        included = _db().execute(INCLUDED, [ids, route["include_params"], ids], prepare=True)
        entries += [_entry(t, i, c, "include") for t, i, c in included]
    counted = "" if total is None else f'"total":{total},'
    return f'{{"resourceType":"Bundle","type":"searchset",{counted}"entry":[{",".join(entries)}]}}'


def _read(path: str) -> str | None:
    resource_type, _, logical_id = path.partition("/")
    row = _db().execute(READ, [resource_type, logical_id], prepare=True).fetchone()
    return row[2] if row else None


def _create(body: bytes) -> str:
    resource = json.loads(body)
    logical_id = os.urandom(16).hex()
    resource.update(id=logical_id, meta={"versionId": "1"})
    content = json.dumps(resource, separators=(",", ":"))
    _db().execute(CREATE, [logical_id, datetime.now(UTC), content], prepare=True)
    return content


def application(environ, start_response):
    global _routes
    if _routes is None:
        with _setup_lock:
            _routes = _routes if _routes is not None else _setup()
    path = environ["PATH_INFO"].removeprefix("/fhir/")
    query = environ.get("QUERY_STRING", "")
    key = route_key(f"{path}?{query}")
    if path == "/healthz":
        body, status = '{"status":"ok"}', "200 OK"
    elif environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body, status = _create(environ["wsgi.input"].read(length)), "201 Created"
    elif key in _routes:
        body, status = _search(_routes[key]), "200 OK"
    else:
        body = _read(urlsplit(path).path)
        status = "200 OK" if body else "404 Not Found"
    data = (body or "{}").encode()
    start_response(
        status, [("Content-Type", "application/fhir+json"), ("Content-Length", str(len(data)))]
    )
    return [data]
