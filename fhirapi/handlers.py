"""One function per FHIR interaction; each takes the DRF request and URL kwargs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from rest_framework.request import Request
from rest_framework.response import Response

from directory import storage
from directory.errors import InvalidRequest, NotFound
from directory.formats import instant
from directory.registry import RESOURCE_TYPES
from directory.search import SearchRequest, search

from . import authorization, bundles, paging, subscription_api, transactions
from .criteria import criteria_pairs
from .exceptions import UnsupportedMediaType
from .identity import client_key
from .links import base_url, with_query
from .parsers import FORM_MEDIA_TYPE, base_media_type, read_limited
from .prefer import preferences
from .responses import resource_response, write_response

# Parameters this layer consumes itself, so the search engine never sees them.
TRANSPORT_PARAMS = {"_format"}


def check_type(resource_type: str) -> str:
    if resource_type not in RESOURCE_TYPES:
        raise NotFound(
            f"Resource type '{resource_type}' is not supported by this server", code="not-supported"
        )
    return resource_type


def resource_body(request: Request) -> dict:
    """The JSON resource in the request body (parsing errors surface as 400/413/415)."""
    content = request.data
    if not content or not isinstance(content, dict):
        raise InvalidRequest("The request body must be a FHIR resource")
    return content


# ---------------------------------------------------------------- instance level


def read(request: Request, resource_type: str, logical_id: str) -> Response:
    return resource_response(storage.read(check_type(resource_type), logical_id))


def vread(request: Request, resource_type: str, logical_id: str, version_id: str) -> Response:
    return resource_response(storage.vread(check_type(resource_type), logical_id, version_id))


def update(request: Request, resource_type: str, logical_id: str) -> Response:
    check_type(resource_type)
    content = resource_body(request)
    if_match = request.META.get("HTTP_IF_MATCH")
    guard = authorization.creation_guard(request, resource_type)
    with subscription_api.checked(request, resource_type, content, logical_id) as content:
        result = storage.update(
            resource_type, logical_id, content, if_match=if_match, before_create=guard
        )
    return _update_response(request, result)


def _update_response(request: Request, result: storage.WriteResult) -> Response:
    """201 when the update created, else 200; the body as the client's Prefer asks."""
    verb = "Created" if result.created else "Updated"
    return write_response(
        base_url(request),
        result.row,
        status=201 if result.created else 200,
        prefer=preferences(request),
        message=f"{verb} {result.row}",
    )


def delete(request: Request, resource_type: str, logical_id: str) -> Response:
    # Deleting something unknown or already deleted is still a success (idempotent DELETE).
    storage.delete(check_type(resource_type), logical_id)
    return Response(status=204)


# ---------------------------------------------------------------- type level


def _if_none_exist(request: Request) -> str | None:
    """The conditional-create criteria, refused when a parameter is blank (see criteria.py)."""
    criteria = request.META.get("HTTP_IF_NONE_EXIST")
    if criteria is None:
        return None
    criteria_pairs(criteria, "If-None-Exist")
    return criteria


def create(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    content = resource_body(request)
    criteria = _if_none_exist(request)
    if criteria is not None:
        pairs = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
        authorization.authorize_conditional_create(request, resource_type, pairs)
    logical_id = storage.new_id()  # known before the write: a Subscription's channel needs it
    with subscription_api.checked(request, resource_type, content, logical_id) as content:
        result = storage.create(
            resource_type, content, if_none_exist=criteria, logical_id=logical_id
        )
    row = result.row
    message = f"Created {row}" if result.created else f"Matched existing {row}; nothing created"
    return write_response(
        base_url(request),
        row,
        status=201 if result.created else 200,
        prefer=preferences(request),
        message=message,
    )


def _url_criteria(request: Request, what: str) -> list[tuple[str, str]]:
    return criteria_pairs(request.META.get("QUERY_STRING", ""), what)


def conditional_update(request: Request, resource_type: str) -> Response:
    """`PUT Type?criteria`: update the one match, create when none, 412 when several."""
    check_type(resource_type)
    pairs = _url_criteria(request, "A conditional update")
    authorization.authorize_criteria(request, "conditional-update criteria", resource_type, pairs)
    content = resource_body(request)
    result = storage.conditional_update(
        resource_type,
        pairs,
        content,
        if_match=request.META.get("HTTP_IF_MATCH"),
        before_create=authorization.creation_guard(request, resource_type),
    )
    return _update_response(request, result)


def conditional_delete(request: Request, resource_type: str) -> Response:
    """`DELETE Type?criteria`: delete the one match; none is a success, several a 412."""
    check_type(resource_type)
    pairs = _url_criteria(request, "A conditional delete")
    authorization.authorize_criteria(request, "conditional-delete criteria", resource_type, pairs)
    storage.conditional_delete(resource_type, pairs)
    return Response(status=204)


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    # parse_qsl keeps order and repeats, both of which matter to search (e.g. repeated _include).
    return parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)


def _form_pairs(request: Request) -> list[tuple[str, str]]:
    """Parameters from a POST _search body, which must be form-encoded when present."""
    body = read_limited(request.stream)
    if not body:
        return []
    if base_media_type(request.content_type) != FORM_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"POST _search takes {FORM_MEDIA_TYPE}, not '{request.content_type[:80]}'"
        )
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise InvalidRequest("The _search form body is not UTF-8") from None


def _search(request: Request, resource_type: str, pairs: list[tuple[str, str]]) -> Response:
    check_type(resource_type)
    params = [(k, v) for k, v in pairs if k not in TRANSPORT_PARAMS]
    authorization.authorize_search(request, resource_type, params)
    params = authorization.owned_search(request, resource_type, params)
    strict = preferences(request).strict
    result = search(
        SearchRequest(
            resource_type=resource_type, params=params, strict=strict, owner=client_key(request)
        )
    )
    return Response(bundles.searchset_bundle(base_url(request), resource_type, result))


def search_type(request: Request, resource_type: str) -> Response:
    return _search(request, resource_type, _query_pairs(request))


def search_type_post(request: Request, resource_type: str) -> Response:
    return _search(request, resource_type, _query_pairs(request) + _form_pairs(request))


# ---------------------------------------------------------------- history


def _history(request: Request, scope: paging.HistoryScope, path: str) -> Response:
    query = request.query_params
    since = paging.parse_since(query.get("_since"))
    count = paging.parse_count(query.get("_count"))
    before = paging.read_cursor(scope, query.get(paging.CURSOR_PARAM))
    filters: dict[str, Any] = {
        "resource_type": scope.resource_type,
        "logical_id": scope.logical_id,
        "since": since,
    }
    versions, more = storage.history_page(**filters, before=before, count=count)
    total = storage.history_count(**filters)

    base = base_url(request)
    fixed = [("_count", str(count))]
    if since is not None:
        fixed.insert(0, ("_since", instant(since)))
    url = f"{base}/{path}"

    def page_link(cursor_before: int | None) -> str:
        cursor = (
            []
            if cursor_before is None
            else [(paging.CURSOR_PARAM, paging.make_cursor(scope, cursor_before))]
        )
        return with_query(url, fixed + cursor)

    links = [("self", page_link(before)), ("first", page_link(None))]
    if before is not None:
        links.append(("previous", page_link(paging.previous_before(scope, since, before, count))))
    if more and versions:
        links.append(("next", page_link(versions[-1].id)))
    return Response(bundles.history_bundle(base, versions, total=total, links=links))


def history_instance(request: Request, resource_type: str, logical_id: str) -> Response:
    scope = paging.HistoryScope(check_type(resource_type), logical_id)
    return _history(request, scope, f"{resource_type}/{logical_id}/_history")


def history_type(request: Request, resource_type: str) -> Response:
    scope = paging.HistoryScope(check_type(resource_type))
    return _history(request, scope, f"{resource_type}/_history")


def history_system(request: Request) -> Response:
    return _history(request, paging.HistoryScope(), "_history")


# ---------------------------------------------------------------- system


def capabilities(request: Request) -> Response:
    # capability reads the route table, which refers back to these handlers.
    from .capability import capability_statement

    return Response(capability_statement(base_url(request)))


def batch_or_transaction(request: Request) -> Response:
    return Response(transactions.process(request, resource_body(request)))


def unknown_endpoint(request: Request, **kwargs: Any) -> Response:
    raise NotFound(f"No FHIR endpoint at {request.path}")
