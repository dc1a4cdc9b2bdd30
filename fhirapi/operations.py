"""`$reindex`: start a reindex job (202 + Content-Location) and report its progress.

`POST [base]/$reindex` reindexes every type, `POST [base]/{type}/$reindex` one type; the job runs
in a background thread of the worker that took the request (directory/reindex.py), and
`GET [base]/$reindex/{job}` answers a Parameters resource with its state and done/total.

Authorization: starting a job rewrites the index of every resource it covers, so it needs `u` on
SearchParameter (administering search parameters) and `u` on each type covered
(`system/*.cruds` or `system/*.write` have both; a read-only `system/*.rs` client gets 403).
Reading a job's status needs `r` on SearchParameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.http.response import HttpResponseBase
from django.urls import re_path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from directory import registry, reindex
from directory.customparams import RESOURCE_TYPE as SEARCH_PARAMETER
from directory.errors import NotFound
from directory.formats import instant
from security.context import context_of

from . import bulk
from .authorization import ScopePermission, _check_spine_interaction, authorize
from .handlers import check_type
from .links import base_url
from .routes import Route
from .views import FHIRView

REINDEX = "reindex"


def start(request: Request, resource_type: str = "") -> Response:
    if resource_type:
        check_type(resource_type)
    job = reindex.start_job(resource_type)
    location = f"{base_url(request)}/$reindex/{job.pk}"
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": f"Reindex job {job.pk} started over {job.total} resources of "
                f"{resource_type or 'every type'}; its progress is at {location}",
            }
        ],
    }
    return Response(body, status=202, headers={"Content-Location": location})


def status(request: Request, job_id: str) -> Response:
    job = reindex.ReindexJob.objects.filter(pk=int(job_id)).first()
    if job is None:
        raise NotFound(f"No reindex job {job_id}")
    return Response(job_parameters(job))


def job_parameters(job: reindex.ReindexJob) -> dict:
    """A job as a Parameters resource: state, resource type, done, total and times."""
    parameters = [
        {"name": "job", "valueString": str(job.pk)},
        {"name": "state", "valueCode": job.state},
        {"name": "resourceType", "valueString": job.resource_type or "*"},
        {"name": "done", "valueInteger": job.done},
        {"name": "total", "valueInteger": job.total},
    ]
    for name in ("created", "started", "finished"):
        moment = getattr(job, name)
        if moment is not None:
            parameters.append({"name": name, "valueInstant": instant(moment)})
    if job.error:
        parameters.append({"name": "error", "valueString": job.error})
    return {"resourceType": "Parameters", "parameter": parameters}


class OperationPermission(ScopePermission):
    """The grants an operation needs, decided by the one authorization decision point."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        view = cast(FHIRView, view)  # the permission of OperationView only
        route = view.route_for(request)
        if route is None:
            return True
        context = context_of(request)
        resource_type = view.kwargs.get("resource_type", "")
        context.interaction = route.interaction
        context.resource_type = resource_type
        _check_spine_interaction(request, context, route.interaction, resource_type)
        if resource_type and resource_type not in registry.RESOURCE_TYPES:
            return True  # the handler answers 404
        authorize(context, route.interaction, needed_grants(route, resource_type))
        return True


def needed_grants(route: Route, resource_type: str) -> set[tuple[str, str]]:
    if route.method == "GET":
        return {(SEARCH_PARAMETER, "r")}
    types = (resource_type,) if resource_type else registry.RESOURCE_TYPES
    return {(SEARCH_PARAMETER, "u")} | {(t, "u") for t in types}


class OperationView(FHIRView):
    permission_classes = [OperationPermission]


def _view(route: Route) -> Callable[..., HttpResponseBase]:
    methods = [route.method.lower()]
    return OperationView.as_view(routes={route.method: route}, http_method_names=methods)


urlpatterns = [
    re_path(
        r"^\$reindex$",
        _view(Route(REINDEX, "system", "", "POST", start)),
        name="reindex",
    ),
    re_path(
        r"^\$reindex/(?P<job_id>[0-9]{1,18})$",
        _view(Route("reindex-status", "system", "", "GET", status)),
        name="reindex-status",
    ),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]*)/\$reindex$",
        _view(Route(REINDEX, "type", "", "POST", start)),
        name="reindex-type",
    ),
]

# FHIR Bulk Data `$export`, its status and its files (fhirapi/bulk.py).
urlpatterns += bulk.urlpatterns
