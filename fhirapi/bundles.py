"""Bundle building for history and search results."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from directory.formats import etag, instant
from directory.models import ResourceVersion
from directory.search import SearchEntry, SearchResult
from directory.stored import StoredResource

from .links import resource_url, with_query

_STATUS_TEXT = {"200": "200 OK", "201": "201 Created", "204": "204 No Content"}


def bundle(
    bundle_type: str, *, total: int | None, links: list[tuple[str, str]], entries: list[dict]
) -> dict:
    """A Bundle with a fresh id; `links` are (relation, url) pairs in order."""
    result: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(timezone.now())},
        "type": bundle_type,
    }
    if total is not None:
        result["total"] = total
    if links:
        result["link"] = [{"relation": rel, "url": url} for rel, url in links]
    if entries:
        result["entry"] = entries
    return result


# ---------------------------------------------------------------- history


def _history_request(version: ResourceVersion) -> dict:
    url = version.resource_type
    if version.method != "POST":
        url = f"{version.resource_type}/{version.logical_id}"
    return {"method": version.method, "url": url}


def _history_status(version: ResourceVersion) -> str:
    if version.method == "DELETE":
        return _STATUS_TEXT["204"]
    return _STATUS_TEXT["201"] if version.version_id == 1 else _STATUS_TEXT["200"]


def history_entry(base: str, version: ResourceVersion) -> dict:
    entry: dict[str, Any] = {
        "fullUrl": resource_url(base, version.resource_type, version.logical_id)
    }
    if version.method != "DELETE" and version.content:
        entry["resource"] = StoredResource(version.resource_type, version.content)
    entry["request"] = _history_request(version)
    entry["response"] = {
        "status": _history_status(version),
        "etag": etag(version.version_id),
        "lastModified": instant(version.last_updated),
    }
    return entry


def history_bundle(
    base: str, versions: list[ResourceVersion], *, total: int, links: list[tuple[str, str]]
) -> dict:
    entries = [history_entry(base, v) for v in versions]
    return bundle("history", total=total, links=links, entries=entries)


# ---------------------------------------------------------------- search


def _search_links(base: str, resource_type: str, result: SearchResult) -> list[tuple[str, str]]:
    url = f"{base}/{resource_type}"
    links = [("self", with_query(url, result.self_params))]
    links.append(("first", with_query(url, result.first_params)))
    if result.previous_params is not None:
        links.append(("previous", with_query(url, result.previous_params)))
    if result.next_params is not None:
        links.append(("next", with_query(url, result.next_params)))
    return links


def ignored_outcome(notes: list[str]) -> dict:
    """OperationOutcome warning about parameters the search ignored (lenient handling)."""
    issues = [{"severity": "warning", "code": "not-supported", "diagnostics": n} for n in notes]
    return {"resourceType": "OperationOutcome", "issue": issues}


def _search_entry(base: str, entry: SearchEntry) -> dict:
    search: dict[str, Any] = {"mode": entry.mode}
    if entry.extensions:  # e.g. the location-distance of a `near` search
        search = {"extension": entry.extensions, **search}
    return {
        "fullUrl": resource_url(base, entry.row.resource_type, entry.row.logical_id),
        "resource": entry.content,
        "search": search,
    }


def searchset_bundle(base: str, resource_type: str, result: SearchResult) -> dict:
    entries = [_search_entry(base, e) for e in result.entries]
    if result.ignored:
        entries.append(
            {
                "resource": ignored_outcome(result.ignored),
                "search": {"mode": "outcome"},
            }
        )
    links = _search_links(base, resource_type, result)
    return bundle("searchset", total=result.total, links=links, entries=entries)
