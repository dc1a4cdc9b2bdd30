"""FHIR Bulk Data `$export` (Bulk Data Access IG 2.0): kick-off, status, cancel and files.

`GET [base]/$export` (every type) or `[base]/{type}/$export` with `Prefer: respond-async` answers
202 with `Content-Location: [base]/$export-status/{job}`. Polling that URL answers 202 with
`X-Progress` while the job runs, then 200 with the manifest; `DELETE` on it cancels (202) and
deletes the files. Each file is `[base]/$export-file/{job}/{type}.ndjson`.

A job belongs to the client that started it (fhirapi/identity.py): for anyone else its URLs
answer 404 exactly like a job that never existed, whatever their credentials. Every request
passes the whole security chain (certificate, key, token) and the decision point checks `r` on
the types concerned (fhirapi/authorization.py). The job itself runs in directory/export.py.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl, unquote_plus

from django.conf import settings
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import re_path
from django.utils import timezone
from django.utils.http import http_date
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from directory import export, registry
from directory.customparams import check_ready
from directory.errors import FHIRError, InvalidRequest, NotFound
from directory.formats import instant
from directory.search.params import parse
from security.context import context_of

from . import authorization
from .exceptions import NotAcceptable, outcome
from .handlers import check_type
from .identity import client_key
from .links import base_url
from .negotiation import FHIRContentNegotiation, _accept_ranges, accepts_json
from .paging import parse_since
from .prefer import preferences
from .routes import Route
from .views import FHIRView

KICK_OFF, STATUS, CANCEL, FILE = "export", "export-status", "export-cancel", "export-file"
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = {NDJSON, "application/ndjson", "ndjson"}
NDJSON_ACCEPTS = {NDJSON, "application/ndjson", "application/x-ndjson"}
# Parameters of the kick-off this server implements; `_format` is the transport's (JSON only).
PARAMETERS = {"_type", "_since", "_typeFilter", "_outputFormat", "_format"}
SINGLE = ("_since", "_outputFormat")
RETRY_SECONDS = 2  # Retry-After while a job runs: a small directory is exported in seconds
JOB_KEY = r"(?P<job_key>[A-Za-z0-9_-]{20,64})"
MISSING = "No export job at this URL"  # the same for a purged, cancelled or another's job


# ---------------------------------------------------------------- kick-off


def kick_off(request: Request, resource_type: str = "") -> Response:
    if resource_type:
        check_type(resource_type)
    prefs = preferences(request)
    if not prefs.respond_async:
        raise InvalidRequest("$export is asynchronous: send the header 'Prefer: respond-async'")
    export.purge_expired()
    owner = client_key(request)
    parsed = _parameters(request, resource_type, strict=prefs.strict)
    authorization.authorize_export(request, parsed.types, parsed.type_filters)
    if export.active_jobs(owner) >= settings.BULK_EXPORT_MAX_ACTIVE_PER_CLIENT:
        raise ExportsBusy()
    parsed.owner = owner
    job = export.start_job(parsed)
    location = f"{base_url(request)}/$export-status/{job.key}"
    body = outcome(
        "information",
        "informational",
        f"Export of {', '.join(parsed.types)} accepted; poll {location} for its manifest",
    )
    return Response(body, status=202, headers={"Content-Location": location})


class ExportsBusy(FHIRError):
    status = 429
    code = "throttled"

    def __init__(self) -> None:
        super().__init__(
            "Too many exports of this client are running; wait for one to finish or cancel it"
        )
        self.retry_after = 30  # read by the error handler (fhirapi/errors.py) for Retry-After


def _raw_pairs(query: str) -> list[tuple[str, str]]:
    """(name, still-encoded value): `_type` and `_typeFilter` split on the commas of the URL
    itself, before decoding, so an encoded comma inside a filter query stays in the query."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote_plus(name), value))
    return pairs


def _parameters(request: Request, resource_type: str, *, strict: bool) -> export.ExportRequest:
    raw = request.META.get("QUERY_STRING", "")
    pairs = _raw_pairs(raw)
    _check_names(pairs, strict)
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in PARAMETERS:
            values.setdefault(name, []).append(value)
    for name in SINGLE:
        if len(values.get(name, [])) > 1:
            raise InvalidRequest(f"{name} may be given once", expression=[name])
    _check_output_format(values.get("_outputFormat"))
    types = _types(request, values.get("_type"), resource_type, strict)
    path = f"{resource_type}/$export" if resource_type else "$export"
    return export.ExportRequest(
        owner="",
        request_url=f"{base_url(request)}/{path}" + (f"?{raw}" if raw else ""),
        types=types,
        since=_since(values.get("_since")),
        type_filters=_type_filters(values.get("_typeFilter", []), types),
    )


def _check_names(pairs: list[tuple[str, str]], strict: bool) -> None:
    """Unknown or unimplemented parameters (`patient`, `_elements`, ...): refused, as the IG
    asks, unless the client prefers lenient handling; then they are ignored."""
    unknown = sorted({name for name, _ in pairs if name not in PARAMETERS})
    if unknown and strict:
        raise InvalidRequest(
            f"$export does not support the parameter(s) {', '.join(unknown)}",
            expression=unknown,
            code="not-supported",
        )


def _check_output_format(values: list[str] | None) -> None:
    if not values:
        return
    value = unquote_plus(values[0]).replace(" ", "+")  # an unescaped '+' arrives as a space
    if value not in OUTPUT_FORMATS:
        raise InvalidRequest(
            f"_outputFormat '{value[:80]}' is not supported; use {NDJSON}",
            expression=["_outputFormat"],
            code="not-supported",
        )


def _types(
    request: Request, values: list[str] | None, resource_type: str, strict: bool
) -> list[str]:
    """The types to export, in the server's order; without `_type`, every readable type."""
    if resource_type and resource_type not in registry.SHARED_TYPES:
        raise InvalidRequest(
            f"{resource_type} is not exported: each client reads only its own, one at a time",
            code="not-supported",
        )
    if values is None:
        return [resource_type] if resource_type else authorization.exportable_types(request)
    asked = {t for v in values for t in unquote_plus(v).split(",") if t}
    allowed = {resource_type} if resource_type else set(registry.SHARED_TYPES)
    unsupported = sorted(asked - allowed)
    if unsupported and strict:
        raise InvalidRequest(
            f"_type names type(s) this export does not cover: {', '.join(unsupported)[:200]}",
            expression=["_type"],
            code="not-supported",
        )
    types = [t for t in registry.SHARED_TYPES if t in asked & allowed]
    if not types:
        raise InvalidRequest("_type names no type this export covers", expression=["_type"])
    return types


def _since(values: list[str] | None) -> datetime | None:
    if not values:
        return None
    text = unquote_plus(values[0])
    since = parse_since(text)  # 400 naming the parameter when it is not a FHIR instant
    if since is not None and since > timezone.now():
        raise InvalidRequest("_since is in the future", expression=["_since"])
    return since


def _type_filters(values: list[str], types: list[str]) -> dict[str, list[list[tuple[str, str]]]]:
    """`Type?query` items (comma-separated, repeatable), each checked now by the search engine,
    so a bad filter is a 400 at kick-off and not a failed job later."""
    filters: dict[str, list[list[tuple[str, str]]]] = {}
    for item in (unquote_plus(v) for value in values for v in value.split(",") if v):
        resource_type, mark, query = item.partition("?")
        if not mark or resource_type not in types or not query:
            raise InvalidRequest(
                f"_typeFilter '{item[:120]}' must be 'Type?query' for an exported type",
                expression=["_typeFilter"],
            )
        pairs = parse_qsl(query, keep_blank_values=True)
        check_ready(resource_type, pairs)  # a custom parameter not reindexed yet: 409
        parse(resource_type, pairs, strict=True, filters_only=True)
        filters.setdefault(resource_type, []).append(pairs)
    return filters


# ---------------------------------------------------------------- status, cancel, files


def _owned_job(request: Request, job_key: str) -> export.ExportJob:
    """The job, only for its owner; anyone else gets the same 404 as for no job at all."""
    export.purge_expired()
    job = export.ExportJob.objects.filter(key=job_key).first()
    if job is None or not hmac.compare_digest(job.owner, client_key(request)):
        raise NotFound(MISSING)
    if export.is_expired(job):
        export.cancel_job(job)
        raise NotFound(MISSING)
    return job


def status(request: Request, job_key: str) -> Response:
    job = _owned_job(request, job_key)
    authorization.authorize_export_job(request, STATUS, job.types)
    if job.state in (export.ExportJob.QUEUED, export.ExportJob.RUNNING):
        progress = f"{job.state}: {job.done} of {job.total} resources"
        headers = {"X-Progress": progress, "Retry-After": str(RETRY_SECONDS)}
        return Response(status=202, headers=headers)
    if job.state == export.ExportJob.FAILED:
        # The reason stays in the log and on the row; the client learns only that it failed.
        body = outcome("error", "exception", "The export failed; start a new one")
        return Response(body, status=500)
    return Response(
        manifest(request, job),
        content_type="application/json",
        headers={"Expires": http_date(job.expires.timestamp())},
    )


def manifest(request: Request, job: export.ExportJob) -> dict[str, Any]:
    base = base_url(request)
    return {
        # Set when the job started: a finished job has one.
        "transactionTime": instant(cast(datetime, job.transaction_time)),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": item["type"],
                "url": f"{base}/$export-file/{job.key}/{item['type']}{export.FILE_SUFFIX}",
                "count": item["count"],
            }
            for item in job.output
            if item["count"]
        ],
        "error": [],
    }


def cancel(request: Request, job_key: str) -> Response:
    job = _owned_job(request, job_key)
    authorization.authorize_export_job(request, CANCEL, job.types)
    export.cancel_job(job)
    return Response(outcome("information", "informational", "Export cancelled"), status=202)


def download(request: Request, job_key: str, resource_type: str) -> FileResponse:
    job = _owned_job(request, job_key)
    written = {item["type"] for item in job.output if item["count"]}
    if job.state != export.ExportJob.DONE or resource_type not in written:
        raise NotFound(MISSING)
    authorization.authorize_export_job(request, FILE, [resource_type])
    try:
        handle = open(export.file_path(job, resource_type), "rb")  # noqa: SIM115 (streamed)
    except FileNotFoundError:  # purged by another worker a moment ago
        raise NotFound(MISSING) from None
    return FileResponse(handle, content_type=NDJSON)


# ---------------------------------------------------------------- views


class BulkPermission(BasePermission):
    """Names the interaction for the audit (and Spine); the handlers ask the decision point,
    once they know the job's types."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        view = cast(FHIRView, view)  # the permission of BulkView and FileView only
        route = view.route_for(request)
        if route is None:
            return True
        context = context_of(request)
        context.interaction = route.interaction
        context.resource_type = view.kwargs.get("resource_type", "")
        authorization._check_spine_interaction(
            request, context, route.interaction, context.resource_type
        )
        return True


class BulkView(FHIRView):
    permission_classes = [BulkPermission]


class NDJSONNegotiation(FHIRContentNegotiation):
    """A file is NDJSON; errors about it are FHIR JSON. Accept must admit one of them."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        header = request.META.get("HTTP_ACCEPT")
        ndjson = any(m in NDJSON_ACCEPTS and q > 0 for m, q in _accept_ranges(header or ""))
        if not (ndjson or accepts_json(header)):
            raise NotAcceptable(f"Export files are {NDJSON}")
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class FileView(BulkView):
    content_negotiation_class = NDJSONNegotiation

    def dispatch_route(  # type: ignore[override]  # a file: FileResponse, not Response
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # A file is not a Bundle: its one type was authorised before it was opened.
        route = self.route_for(request)
        if route is None:  # as_view's http_method_names admits routed methods only
            raise MethodNotAllowed(request.method or "")
        return route.handler(request, *args, **kwargs)

    get = dispatch_route  # type: ignore[assignment]  # a FileResponse, as dispatch_route


def _view(view_class: type[FHIRView], *routes: Route) -> Callable[..., HttpResponseBase]:
    return view_class.as_view(
        routes={r.method: r for r in routes}, http_method_names=[r.method.lower() for r in routes]
    )


urlpatterns = [
    re_path(r"^\$export$", _view(BulkView, Route(KICK_OFF, "system", "", "GET", kick_off))),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]*)/\$export$",
        _view(BulkView, Route(KICK_OFF, "type", "", "GET", kick_off)),
    ),
    re_path(
        rf"^\$export-status/{JOB_KEY}$",
        _view(
            BulkView,
            Route(STATUS, "system", "", "GET", status),
            Route(CANCEL, "system", "", "DELETE", cancel),
        ),
    ),
    re_path(
        rf"^\$export-file/{JOB_KEY}/(?P<resource_type>[A-Z][A-Za-z]*)\.ndjson$",
        _view(FileView, Route(FILE, "system", "", "GET", download)),
    ),
]
