"""`$import`: the FHIR Bulk Data import pattern, with the NDJSON uploaded rather than fetched.

Kick-off, `POST [base]/$import` with `Prefer: respond-async`, either

- an NDJSON body (`Content-Type: application/fhir+ndjson`), streamed to a spool file and refused
  with 413 past FHIR_IMPORT_MAX_BYTES; or
- a Parameters resource (`inputFormat` = application/fhir+ndjson, `input` parts with `type` and
  `url`), as the draft Bulk Data import and HAPI/Azure take it. The server fetches each url only
  when it starts with a prefix on the operator's FHIR_IMPORT_ALLOWED_URLS (none by default:
  fetching URLs a client names is server-side request forgery); any other url is a 400.

Answer: 202 with `Content-Location` naming the status URL `[base]/$import/{job}`. Polling it
answers 202 with `X-Progress` while the job runs, then 200 with the manifest: resources stored per
type, and under `error` the URL of the NDJSON file of OperationOutcomes naming each refused line.
`DELETE` on the status URL cancels (batches already committed stay stored). Only the client that
started a job sees it; to any other it does not exist (404).

Authorization (fhirapi/authorization.py): `c` and `u` on every type imported. The types an upload
holds are only known by reading it, so the kick-off is refused (403) only when the token may write
no type, or when an `input.type` names one it may not write; a line of a type the token cannot
write is a line error in the error file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import re_path
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from directory import bulkimport_jobs, customparams
from directory.bulkimport_jobs import ImportJob
from directory.errors import FHIRError, InvalidRequest, NotFound
from directory.formats import instant
from directory.validation import parse_json
from security.context import context_of

from . import authorization
from .authorization import ScopePermission
from .exceptions import PayloadTooLarge, UnsupportedMediaType, outcome
from .links import base_url
from .parsers import JSON_MEDIA_TYPES, base_media_type, read_limited, too_large
from .routes import Route
from .views import FHIRView, _declared_length

NDJSON_MEDIA_TYPES = ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson")
NDJSON = "application/fhir+ndjson"
READ_CHUNK = 1 << 16
FETCH_TIMEOUT = 30
RETRY_AFTER_SECONDS = 2


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The import is larger than {settings.FHIR_IMPORT_MAX_BYTES} bytes; split it"
    )


# ---------------------------------------------------------------- kick-off


def kick_off(request: Request) -> Response:
    if "respond-async" not in request.META.get("HTTP_PREFER", "").lower():
        raise InvalidRequest("$import runs asynchronously: send `Prefer: respond-async`")
    media_type = base_media_type(request.content_type)
    if media_type in NDJSON_MEDIA_TYPES:
        writable = request.import_writable  # type: ignore[attr-defined]  # ImportPermission's
        path, size = _spool(_body_chunks(request))
    elif media_type in JSON_MEDIA_TYPES:
        stream = cast(IO[bytes], request._request)  # Django's request reads its body like a file
        urls, types = _inputs(parse_json(read_limited(stream)))
        writable = authorization.authorize_import(request, types)
        path, size = _spool(_fetched(urls))
    else:
        raise UnsupportedMediaType(
            f"$import takes {NDJSON} (the resources) or application/fhir+json (a Parameters "
            "resource naming them)"
        )
    if size == 0:
        bulkimport_jobs.discard(path)
        # A chunked body (no Content-Length) reaches the application empty as well.
        raise InvalidRequest("The import holds no resources (send it with a Content-Length)")
    try:
        job = bulkimport_jobs.create_job(
            path,
            size,
            owner=authorization.import_owner(request),
            writable=writable,
            # Not the URL as sent: its query string could carry an API key.
            request_url=f"{base_url(request)}/$import",
        )
    except BaseException:
        bulkimport_jobs.discard(path)
        raise
    bulkimport_jobs.start_job(job)
    location = status_url(request, job)
    body = outcome("information", "informational", f"Import job accepted; poll {location}")
    return Response(body, status=202, headers={"Content-Location": location})


def _spool(chunks: Iterable[bytes]) -> tuple[Path, int]:
    try:
        return bulkimport_jobs.spool(chunks)
    except bulkimport_jobs.SpoolTooLarge:
        raise _too_large() from None


def _body_chunks(request: Request) -> Iterator[bytes]:
    raw = request._request  # Django's request: the body unread, streamed rather than buffered
    while chunk := raw.read(READ_CHUNK):
        yield chunk


def _inputs(parameters: dict) -> tuple[list[str], set[str]]:
    """The urls and types a Parameters kick-off names (400 for anything else)."""
    if parameters.get("resourceType") != "Parameters":
        raise InvalidRequest("A JSON $import body must be a Parameters resource")
    urls: list[str] = []
    types: set[str] = set()
    for parameter in _objects(parameters.get("parameter")):
        name = parameter.get("name")
        if name == "inputFormat" and _value(parameter) != NDJSON:
            raise InvalidRequest(f"inputFormat must be {NDJSON}", code="not-supported")
        if name == "input":
            parts = {p.get("name"): _value(p) for p in _objects(parameter.get("part"))}
            url, resource_type = parts.get("url"), parts.get("type")
            if not isinstance(url, str):
                raise InvalidRequest("Each input needs a url part", expression=["input.url"])
            urls.append(_allowed_url(url))
            if isinstance(resource_type, str):
                types.add(resource_type)
    if not urls:
        raise InvalidRequest("$import needs at least one input (or an NDJSON body)")
    return urls, types


def _objects(value: object) -> list[dict[str, Any]]:
    """The JSON objects of a list; anything else a Parameters resource may hold is ignored."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _value(parameter: object) -> object:
    if not isinstance(parameter, dict):
        return None
    return next((v for k, v in parameter.items() if k.startswith("value")), None)


def _allowed_url(url: str) -> str:
    """The url, if it lies under a prefix the operator allowed (same scheme, host and port)."""
    target = urlsplit(url)
    for prefix in settings.FHIR_IMPORT_ALLOWED_URLS:
        allowed = urlsplit(prefix)
        if (
            (target.scheme, target.netloc) == (allowed.scheme, allowed.netloc)
            and target.path.startswith(allowed.path)
            and ".." not in target.path.split("/")
        ):
            return url
    raise InvalidRequest(
        "This server fetches import input only from locations its operator allowed; "
        "upload the NDJSON as the request body instead",
        expression=["input.url"],
    )


def _fetched(urls: list[str]) -> Iterator[bytes]:
    """Each url's body in turn, lines kept apart; no redirects (they could leave the list)."""
    for url in urls:
        try:
            with requests.get(
                url, stream=True, timeout=FETCH_TIMEOUT, allow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise InvalidRequest(f"An input url answered HTTP {response.status_code}")
                yield from response.iter_content(READ_CHUNK)
        except requests.RequestException:
            raise InvalidRequest("An input url could not be fetched") from None
        yield b"\n"


# ---------------------------------------------------------------- status, errors, cancel


def status_url(request: Request, job: ImportJob) -> str:
    return f"{base_url(request)}/$import/{job.pk}"


def _owned_job(request: Request, job_id: str, what: str) -> ImportJob:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import job")
    authorization.authorize_import_job(request, job.owner, what)
    job = bulkimport_jobs.check_alive(job)
    if job.state == ImportJob.CANCELLED:
        raise NotFound("The import job was cancelled")
    return job


def status(request: Request, job_id: str) -> Response:
    job = _owned_job(request, job_id, "status")
    if job.state in (ImportJob.QUEUED, ImportJob.RUNNING):
        return _in_progress(job)
    if job.state == ImportJob.FAILED:
        # The reason stays in the server's log: it may name internals.
        raise FHIRError(
            "The import failed; batches committed before the failure stay stored",
            status=500,
            code="exception",
        )
    return Response(manifest(request, job), content_type="application/json")


def _in_progress(job: ImportJob) -> Response:
    total = job.lines_total or 0
    percent = f" ({100 * job.lines_done // total}%)" if total else ""
    progress = f"{job.lines_done}/{total} lines{percent}, {sum(job.counts.values())} stored"
    headers = {"X-Progress": progress, "Retry-After": str(RETRY_AFTER_SECONDS)}
    body = outcome("information", "informational", f"Import {job.state}: {progress}")
    return Response(body, status=202, headers=headers)


def manifest(request: Request, job: ImportJob) -> dict[str, Any]:
    """The completion manifest, shaped like the Bulk Data export manifest."""
    output = [
        {"type": rtype, "count": count, "inputUrl": job.request_url}
        for rtype, count in sorted(job.counts.items())
    ]
    errors: list[dict[str, Any]] = []
    if job.errors or job.warnings:
        errors.append(
            {
                "type": "OperationOutcome",
                "count": job.errors + job.warnings,
                "url": f"{status_url(request, job)}/errors",
            }
        )
    return {
        "transactionTime": instant(job.started or job.created),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": output,
        "error": errors,
        "extension": {"linesRead": job.lines_done, "refused": job.errors},
    }


def error_file(request: Request, job_id: str) -> FileResponse:
    job = _owned_job(request, job_id, "error file")
    if job.state != ImportJob.DONE:
        raise NotFound("The import has not finished")
    try:
        stream = open(job.error_path, "rb")  # noqa: SIM115 - FileResponse closes it
    except OSError:
        raise NotFound("The import's error file is no longer kept") from None
    return FileResponse(stream, content_type=NDJSON)


def cancel(request: Request, job_id: str) -> Response:
    job = _owned_job(request, job_id, "cancel")
    bulkimport_jobs.cancel(job)
    body = outcome("information", "informational", "Import job cancelled")
    return Response(body, status=202)


# ---------------------------------------------------------------- views and URLs


class ImportPermission(ScopePermission):
    """Kick-off: `c` and `u` on some type (fhirapi/authorization.py); a job's URLs: its owner,
    decided by the handler once it has found the job."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        view = cast(FHIRView, view)  # the permission of ImportView only
        route = view.route_for(request)
        if route is None:
            return True
        context = context_of(request)
        context.interaction = route.interaction
        if route.method == "POST":
            # Kept on the request for kick_off: no body read yet, the NDJSON lines' types unknown.
            request.import_writable = authorization.authorize_import(request)  # type: ignore[attr-defined]
        return True


class ImportView(FHIRView):
    """`$import`'s views: the NDJSON body streamed to disk has its own size limit."""

    permission_classes = [ImportPermission]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        APIView.initial(self, request, *args, **kwargs)  # identity, authorization, throttles
        customparams.ensure_fresh()
        ndjson = base_media_type(request.content_type) in NDJSON_MEDIA_TYPES
        limit = settings.FHIR_IMPORT_MAX_BYTES if ndjson else settings.FHIR_MAX_BODY_BYTES
        if _declared_length(request) > limit:
            raise _too_large() if ndjson else too_large()

    def dispatch_route(  # type: ignore[override]  # the error file: FileResponse, not Response
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        route = self.route_for(request)
        if route is None:  # as_view's http_method_names admits routed methods only
            raise MethodNotAllowed(request.method or "")
        response = route.handler(request, *args, **kwargs)
        if isinstance(response, Response):  # the error file is streamed, not a Response
            authorization.check_response(request, response.data)
        return response

    get = post = delete = dispatch_route  # type: ignore[assignment]  # as dispatch_route


def _view(*routes: Route) -> Callable[..., HttpResponseBase]:
    return ImportView.as_view(
        routes={r.method: r for r in routes}, http_method_names=[r.method.lower() for r in routes]
    )


JOB = r"(?P<job_id>[0-9a-f]{32})"

urlpatterns = [
    re_path(r"^\$import$", _view(Route("import", "system", "", "POST", kick_off)), name="import"),
    re_path(
        rf"^\$import/{JOB}$",
        _view(
            Route("import-status", "system", "", "GET", status),
            Route("import-cancel", "system", "", "DELETE", cancel),
        ),
        name="import-status",
    ),
    re_path(
        rf"^\$import/{JOB}/errors$",
        _view(Route("import-errors", "system", "", "GET", error_file)),
        name="import-errors",
    ),
]
