"""Where a request's time goes, layer by layer: the full server in process, profiled.

Uses the benchmark's credentials (bench.run) against `--database`, then calls Django's WSGI
handler (what gunicorn calls) with the headers wrk sends, `--requests` times per query, under
cProfile. Prints the wall time per request unprofiled, and per layer the profiled time per
request including everything it calls, and the queries each request makes.

    python -m bench.profile --database postgres://.../db --queries 0,1 --requests 2000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

from bench.queries import NEW_ORGANIZATION, Query

# (label, file suffix, function name): each layer's entry point; cumulative time includes callees.
LAYERS = [
    ("whole WSGI call", "django/core/handlers/wsgi.py", "__call__"),
    ("request object + signals", "django/core/handlers/wsgi.py", "__init__"),
    ("read-your-writes scope", "config/middleware.py", "__call__"),
    ("response headers set (all layers)", "django/http/response.py", "__setitem__"),
    ("audit: row built", "security/middleware/audit.py", "audit_row"),
    ("audit: INSERT", "security/middleware/audit.py", "write_audit"),
    ("trusted proxy", "security/client_ip.py", "is_trusted_proxy"),
    ("client certificate", "security/middleware/client_certificate.py", "establish_client"),
    ("  header parsed (PEM)", "security/proxyheaders.py", "parse"),
    ("  chain verdict", "security/verification.py", "verify"),
    ("  client identified", "security/middleware/client_certificate.py", "identify_client"),
    ("API key", "security/middleware/api_key.py", "check"),
    ("  key verified", "security/keys.py", "verify_key"),
    ("  last use noted", "security/middleware/api_key.py", "_note_use"),
    ("Spine headers", "security/middleware/spine.py", "check"),
    ("bearer token", "security/middleware/bearer.py", "check"),
    ("  JWT verified", "security/tokens.py", "verify_token"),
    ("URL resolution", "django/urls/resolvers.py", "resolve"),
    ("DRF: request wrapped", "rest_framework/views.py", "initialize_request"),
    ("DRF: initial (all below)", "fhirapi/views.py", "initial"),
    ("  content negotiation", "rest_framework/views.py", "perform_content_negotiation"),
    ("  authorization decision", "fhirapi/authorization.py", "has_permission"),
    ("  throttles", "rest_framework/views.py", "check_throttles"),
    ("  custom params fresh", "directory/customparams.py", "ensure_fresh"),
    ("handler (storage + response)", "fhirapi/views.py", "dispatch_route"),
    ("  storage read", "directory/storage.py", "read"),
    ("  search", "directory/search/__init__.py", "search"),
    ("  response check", "fhirapi/authorization.py", "check_response"),
    ("DRF: finalize (headers, renderer set)", "rest_framework/views.py", "finalize_response"),
    ("  exception handler", "rest_framework/views.py", "handle_exception"),
    ("rendering", "fhirapi/renderers.py", "render"),
    ("in-flight slot released", "fhirapi/throttling.py", "release_slot"),
    ("DB: health check", "db/backends/base/base.py", "close_if_health_check_failed"),
    ("  its SELECT 1", "django/db/backends/postgresql/base.py", "is_usable"),
    ("DB: cursor execute (all SQL)", "django/db/backends/utils.py", "_execute"),
    ("logging calls", "logging/__init__.py", "_log"),
]


def main(argv: list[str] | None = None) -> None:
    options = _arguments(argv)
    environ, paths = _prepare(options)
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    for path in paths:
        print(f"\n## {path.method} /fhir/{path.path}\n")
        _call(handler, environ, path)  # warm: connection, caches
        print(f"queries per request: {_queries(handler, environ, path)}")
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(options.requests):
            _call(handler, environ, path)
        wall = (time.perf_counter() - started) / options.requests * 1000
        cpu = (time.process_time() - cpu) / options.requests * 1000
        # CPU time is this process's own (not the database's): steady on a shared machine.
        print(f"unprofiled: {wall:.3f} ms per request, {cpu:.3f} ms of this process's CPU\n")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(options.requests):
            _call(handler, environ, path)
        profile.disable()
        _report(profile, options.requests, options.top)


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--queries", default="0,1", help="indexes into bench.queries.query_set")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=0, help="also print the top N functions")
    parser.add_argument("--work", default="var/bench-profile")
    return parser.parse_args(argv)


def _prepare(options) -> tuple[dict, list]:
    """Credentials registered with the bench's own commands; Django set up like its servers."""
    import psycopg

    from bench import run
    from bench.queries import query_set, sample_values

    if not options.database:
        raise SystemExit("--database (or BENCH_DATABASE_URL) is required: a generated directory")
    work = Path(options.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    run._env.update(run._django_env(options.database))
    headers = run._credentials(work)
    with psycopg.connect(options.database) as connection:
        queries = query_set(sample_values(connection.cursor()))
    paths = [queries[int(i)] for i in options.queries.split(",")]
    server = run._server_env(work, 0, 1, "profile")
    os.environ.update({k: v for k, v in server.items() if not k.startswith("GUNICORN_")})
    import django

    django.setup()
    environ = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return environ, paths


def _call(handler, headers: dict, query: Query) -> bytes:
    """One request as gunicorn would pass it; a POST sends the bench's new Organization."""
    target, _, query_string = query.path.partition("?")
    body = NEW_ORGANIZATION.encode() if query.method == "POST" else b""
    environ = {
        "REQUEST_METHOD": query.method,
        "CONTENT_TYPE": "application/fhir+json" if body else "",
        "CONTENT_LENGTH": str(len(body)),
        "SCRIPT_NAME": "",
        "PATH_INFO": f"/fhir/{target}",
        "QUERY_STRING": query_string,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **headers,
    }
    status: list[str] = []
    response = handler(environ, lambda s, h, *a: status.append(s))
    answer = b"".join(response)
    response.close()
    if not status[0].startswith(("200", "201")):
        raise SystemExit(f"{query.path}: {status[0]} {answer[:300]!r}")
    return answer


def _queries(handler, environ: dict, path: Query) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _call(handler, environ, path)
    for query in captured.captured_queries:
        print(f"  - {query['sql'][:150]}")
    return len(captured.captured_queries)


def _report(profile: cProfile.Profile, requests: int, top: int) -> None:
    stats = pstats.Stats(profile)
    entries = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = sum(tt for (_, _, tt, _, _) in entries.values())
    print(f"profiled: {total / requests * 1000:.3f} ms per request\n")
    print("| layer | ms per request (profiled, with callees) | share |")
    print("|---|---:|---:|")
    for label, suffix, name in LAYERS:
        cumulative = sum(
            ct
            for (file, _, func), (_, _, _, ct, _) in entries.items()
            if func == name and file.endswith(suffix)
        )
        if cumulative:
            print(f"| {label} | {cumulative / requests * 1000:.3f} | {cumulative / total:.0%} |")
    if top:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
