"""Batch and transaction Bundles posted to the base (FHIR R4 RESTful API, section 3.1.0.11).

A transaction is all or nothing: one database transaction, entries processed in the order FHIR
prescribes (DELETE, then POST, then PUT, then GET), every entry's identity settled before anything
is created (`urn:uuid:` fullUrls get server ids, conditional criteria are matched), references to
those identities rewritten wherever they sit in a resource (before validation, so the type a
reference resolves to is held to its element's target types), and references checked once all
the writes are done, so entries may point at each other in any order. The first failing entry aborts
everything with that entry's OperationOutcome. The creates and updates are checked entry by entry
and stored together (directory/writebatch.py): all entries share one meta.lastUpdated, and unique
identifiers are judged on the state the whole Bundle leaves.

A batch answers each entry on its own, in the order sent, each in its own database transaction;
its entries may not refer to each other.

Each entry is authorised exactly as the same request sent alone (fhirapi.authorization): in a
transaction a refused entry refuses the whole Bundle (403), in a batch only that entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from rest_framework.request import Request

from directory import storage
from directory.errors import Conflict, FHIRError, InvalidRequest, NotFound
from directory.formats import etag, instant
from directory.models import Resource, ResourceVersion
from directory.references import TEMPORARY_PREFIXES
from directory.registry import RESOURCE_TYPES
from directory.search import SearchRequest, search
from directory.stored import StoredResource
from directory.writebatch import EntryFailed, WriteBatch

from . import authorization, bundles, throttling
from .criteria import TRANSPORT_PARAMS, criteria_pairs
from .exceptions import outcome
from .links import base_url, resource_url
from .prefer import Preferences, preferences

logger = logging.getLogger("fhirapi")
T = TypeVar("T")

RESPONSE_TYPES = {"batch": "batch-response", "transaction": "transaction-response"}
# FHIR's transaction processing order by method; PATCH is not offered by this server.
TRANSACTION_ORDER = ("DELETE", "POST", "PUT", "GET")
# Identities a client gives the resources it creates, to refer to them from other entries.
# PostgreSQL's deadlock_detected and serialization_failure: the database aborted the transaction.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
GENERIC_500 = "The server could not process this entry because of an internal error"

# (method, number of path segments) -> interaction; `Type/id/_history/vid` is the only 4.
SHAPES = {
    ("GET", 1): "search-type",
    ("POST", 1): "create",
    ("PUT", 1): "conditional-update",
    ("DELETE", 1): "conditional-delete",
    ("GET", 2): "read",
    ("PUT", 2): "update",
    ("DELETE", 2): "delete",
    ("GET", 4): "vread",
}
CRITERIA_NAMES = {
    "conditional-update": "A conditional update",
    "conditional-delete": "A conditional delete",
}


class TooManyEntries(FHIRError):
    status = 413
    code = "too-costly"


@dataclass(frozen=True)
class Entry:
    """One Bundle entry, parsed: the interaction it asks for and on what."""

    index: int
    method: str
    interaction: str
    resource_type: str
    logical_id: str | None = None
    version_id: str | None = None
    params: list[tuple[str, str]] | None = None  # conditional criteria or search parameters
    if_none_exist: str | None = None
    if_match: str | None = None
    resource: dict | None = None
    full_url: str | None = None


@dataclass
class Result:
    """What one entry did: the row it wrote or read, or a search's Bundle."""

    status: int
    row: Resource | ResourceVersion | None = None
    written: bool = False
    bundle: dict | None = None
    message: str = ""


@dataclass
class Run:
    request: Request
    base: str
    prefer: Preferences
    references: dict[str, str] = field(default_factory=dict)  # fullUrl -> "Type/id"


def process(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The batch-response or transaction-response to a posted Bundle."""
    kind = _bundle_kind(body)
    raws = body.get("entry") or []
    if not isinstance(raws, list):
        raise InvalidRequest("Bundle.entry must be a list", expression=["Bundle.entry"])
    limit = settings.FHIR_MAX_BUNDLE_ENTRIES
    if len(raws) > limit:
        raise TooManyEntries(f"A Bundle may carry at most {limit} entries")
    authorization.authorize_bundle(request, kind)
    # Without this one POST could carry a thousand searches past the per-client rate limit.
    throttling.charge(request, sum(1 for raw in raws if _method(raw) == "GET"))
    run = Run(request, base_url(request), preferences(request))
    entries = _transaction(run, raws) if kind == "transaction" else _batch(run, raws)
    return bundles.bundle(RESPONSE_TYPES[kind], total=None, links=[], entries=entries)


def _method(raw: Any) -> str | None:
    """An entry's request.method as sent, before the entry is parsed (and perhaps refused)."""
    request = raw.get("request") if isinstance(raw, dict) else None
    return request.get("method") if isinstance(request, dict) else None


def _bundle_kind(body: dict) -> str:
    if body.get("resourceType") != "Bundle" or body.get("type") not in RESPONSE_TYPES:
        raise InvalidRequest(
            "The base takes a Bundle of type batch or transaction", expression=["Bundle.type"]
        )
    return body["type"]


# ---------------------------------------------------------------- parsing entries


def parse_entry(index: int, raw: Any, base: str) -> Entry:
    """An entry's request as an Entry; 400 (or 404 for a type this server lacks) when malformed."""
    request = raw.get("request") if isinstance(raw, dict) else None
    if not isinstance(request, dict) or not all(
        isinstance(request.get(name), str) for name in ("method", "url")
    ):
        raise InvalidRequest("Every entry needs request.method and request.url")
    method = request["method"]
    segments, query = _split_url(request["url"], base)
    interaction = _interaction(method, segments)
    resource_type = segments[0]
    if resource_type not in RESOURCE_TYPES:
        raise NotFound(
            f"Resource type '{resource_type}' is not supported by this server", code="not-supported"
        )
    entry = Entry(
        index=index,
        method=method,
        interaction=interaction,
        resource_type=resource_type,
        logical_id=segments[1] if len(segments) > 1 else None,
        version_id=segments[3] if len(segments) > 3 else None,
        if_match=_optional_text(request, "ifMatch"),
        full_url=_optional_text(raw, "fullUrl"),
    )
    return _with_body(_with_params(entry, query, request), raw.get("resource"))


def _split_url(url: str, base: str) -> tuple[list[str], str]:
    """Path segments below the base and the query; an absolute URL must be under our base."""
    if urlsplit(url).scheme:
        if not url.startswith(base + "/"):
            raise InvalidRequest("An entry's request.url must be relative to this server's base")
        url = url[len(base) + 1 :]
    parts = urlsplit(url)
    path = parts.path.strip("/")
    return (path.split("/") if path else []), parts.query


def _interaction(method: str, segments: list[str]) -> str:
    interaction = SHAPES.get((method, len(segments)))
    # `Type/_history`, `Type/_search` and the like are not instances.
    reserved = len(segments) > 1 and segments[1].startswith("_")
    if interaction is None or reserved or (interaction == "vread" and segments[2] != "_history"):
        raise InvalidRequest(
            f"{method[:10]} on this URL is not an interaction a Bundle entry can ask for here",
            code="not-supported",
        )
    return interaction


def _optional_text(holder: dict, name: str) -> str | None:
    value = holder.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    return value


def _with_params(entry: Entry, query: str, request: dict) -> Entry:
    if entry.interaction == "search-type":
        pairs = parse_qsl(query, keep_blank_values=True)
        return replace(entry, params=[(k, v) for k, v in pairs if k not in TRANSPORT_PARAMS])
    if entry.interaction in CRITERIA_NAMES:
        return replace(entry, params=criteria_pairs(query, CRITERIA_NAMES[entry.interaction]))
    criteria = _optional_text(request, "ifNoneExist")
    if entry.interaction == "create" and criteria is not None:
        params = criteria_pairs(criteria, "request.ifNoneExist")
        return replace(entry, params=params, if_none_exist=criteria)
    return entry


def _with_body(entry: Entry, resource: Any) -> Entry:
    if entry.method not in ("POST", "PUT"):
        return entry
    if not isinstance(resource, dict):
        raise InvalidRequest("A POST or PUT entry must carry a resource")
    if resource.get("resourceType") != entry.resource_type:
        raise InvalidRequest(
            f"The entry's resource is not a {entry.resource_type}", expression=["resourceType"]
        )
    return replace(entry, resource=resource)


def _present(value: T | None, what: str) -> T:
    """A part of the entry its interaction guarantees (parse_entry took it from the URL or body)."""
    if value is None:
        raise InvalidRequest(f"The entry has no {what}")
    return value


def _authorize(run: Run, entry: Entry) -> None:
    authorization.authorize_entry(run.request, entry.interaction, entry.resource_type, entry.params)


# ---------------------------------------------------------------- one interaction


def _create(run: Run, entry: Entry) -> Result:
    result = storage.create(
        entry.resource_type,
        _present(entry.resource, "resource"),
        if_none_exist=entry.if_none_exist,
        logical_id=entry.logical_id,
    )
    if result.created:
        return Result(201, result.row, written=True, message=f"Created {result.row}")
    return Result(200, result.row, written=True, message=f"Matched existing {result.row}")


def _written(result: storage.WriteResult) -> Result:
    verb = "Created" if result.created else "Updated"
    return Result(201 if result.created else 200, result.row, True, message=f"{verb} {result.row}")


def _update(run: Run, entry: Entry) -> Result:
    guard = authorization.creation_guard(run.request, entry.resource_type)
    return _written(
        storage.update(
            entry.resource_type,
            _present(entry.logical_id, "id"),
            _present(entry.resource, "resource"),
            if_match=entry.if_match,
            before_create=guard,
        )
    )


def _conditional_update(run: Run, entry: Entry) -> Result:
    guard = authorization.creation_guard(run.request, entry.resource_type)
    return _written(
        storage.conditional_update(
            entry.resource_type,
            _present(entry.params, "criteria"),
            _present(entry.resource, "resource"),
            if_match=entry.if_match,
            before_create=guard,
        )
    )


def _delete(run: Run, entry: Entry) -> Result:
    storage.delete(entry.resource_type, _present(entry.logical_id, "id"))
    return Result(204)


def _conditional_delete(run: Run, entry: Entry) -> Result:
    deleted = storage.conditional_delete(entry.resource_type, _present(entry.params, "criteria"))
    return Result(204, message=f"Deleted {deleted}" if deleted else "")


def _read(run: Run, entry: Entry) -> Result:
    return Result(200, storage.read(entry.resource_type, _present(entry.logical_id, "id")))


def _vread(run: Run, entry: Entry) -> Result:
    logical_id = _present(entry.logical_id, "id")
    version_id = _present(entry.version_id, "version id")
    return Result(200, storage.vread(entry.resource_type, logical_id, version_id))


def _search(run: Run, entry: Entry) -> Result:
    request = SearchRequest(entry.resource_type, entry.params or [], strict=run.prefer.strict)
    result = search(request)
    return Result(200, bundle=bundles.searchset_bundle(run.base, entry.resource_type, result))


def _execute(run: Run, entry: Entry) -> Result:
    return EXECUTORS[entry.interaction](run, entry)


EXECUTORS: dict[str, Callable[[Run, Entry], Result]] = {
    "create": _create,
    "update": _update,
    "conditional-update": _conditional_update,
    "delete": _delete,
    "conditional-delete": _conditional_delete,
    "read": _read,
    "vread": _vread,
    "search-type": _search,
}


# ---------------------------------------------------------------- response entries


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _response_entry(run: Run, result: Result) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    response: dict[str, Any] = {"status": _status(result.status)}
    row = result.row
    if row is not None:
        entry["fullUrl"] = resource_url(run.base, row.resource_type, row.logical_id)
        if result.written:
            response["location"] = f"{row.resource_type}/{row.logical_id}/_history/{row.version_id}"
        response["etag"] = etag(row.version_id)
        response["lastModified"] = instant(row.last_updated)
        # Prefer chooses what a write returns, as for a single create or update.
        if not result.written or run.prefer.return_ == "representation":
            entry["resource"] = StoredResource(row.resource_type, row.live_content())
        elif run.prefer.return_ == "OperationOutcome":
            response["outcome"] = outcome("information", "informational", result.message)
    elif result.bundle is not None:
        entry["resource"] = result.bundle
    entry["response"] = response
    return entry


def _error_entry(status: int, operation_outcome: dict) -> dict:
    return {"response": {"status": _status(status), "outcome": operation_outcome}}


def _at_entry(exc: FHIRError, index: int) -> FHIRError:
    """The entry's error, its issues located at the entry (for a transaction's refusal)."""
    issues = [
        {**issue, "expression": [f"Bundle.entry[{index}]", *issue.get("expression", [])]}
        for issue in exc.issues()
    ]
    return FHIRError(exc.diagnostics, issues=issues, status=exc.status, code=exc.code)


def _rewrite(node: Any, references: dict[str, str]) -> Any:
    """A copy of `node` with every `reference` to a Bundle entry replaced by its `Type/id`."""
    if isinstance(node, list):
        return [_rewrite(item, references) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _target(value, references)
        if key == "reference" and isinstance(value, str)
        else _rewrite(value, references)
        for key, value in node.items()
    }


def _target(reference: str, references: dict[str, str]) -> str:
    if reference in references:
        return references[reference]
    if reference.startswith(TEMPORARY_PREFIXES):
        # Stored as given it would be a reference nobody can ever resolve.
        raise InvalidRequest(
            f"Reference '{reference[:80]}' names no resource this Bundle writes (references "
            "between entries are resolved in transactions only)",
            expression=["reference"],
        )
    return reference


# ---------------------------------------------------------------- batch


def _batch(run: Run, raws: list[Any]) -> list[dict[str, Any]]:
    return [_batch_entry(run, index, raw) for index, raw in enumerate(raws)]


def _batch_entry(run: Run, index: int, raw: Any) -> dict[str, Any]:
    with authorization.entry_decisions(run.request, index):
        try:
            entry = parse_entry(index, raw, run.base)
            _authorize(run, entry)
            if entry.resource is not None:
                # Batch entries are independent: a temporary reference has nothing to name.
                entry = replace(entry, resource=_rewrite(entry.resource, {}))
            with transaction.atomic():
                return _response_entry(run, _execute(run, entry))
        except FHIRError as exc:
            return _error_entry(exc.status, exc.operation_outcome())
        except Exception:
            # One entry's failure must not cost the others their answers (their writes are
            # committed); its own transaction has rolled back.
            logger.exception("Batch entry %s failed", index)
            return _error_entry(500, outcome("error", "exception", GENERIC_500))


# ---------------------------------------------------------------- transaction


def _step(run: Run, entry: Entry, action: Callable[[], T]) -> T:
    """Run one step of an entry, its decisions and its error labelled with the entry."""
    with authorization.entry_decisions(run.request, entry.index):
        try:
            return action()
        except FHIRError as exc:
            raise _at_entry(exc, entry.index) from None


def _parse_all(run: Run, raws: list[Any]) -> list[Entry]:
    entries: list[Entry] = []
    for index, raw in enumerate(raws):
        try:
            entries.append(parse_entry(index, raw, run.base))
        except FHIRError as exc:
            raise _at_entry(exc, index) from None
    full_urls = [e.full_url for e in entries if e.full_url]
    if len(full_urls) != len(set(full_urls)):
        raise InvalidRequest("Two entries of the transaction have the same fullUrl")
    # Identities are settled before anything is written, so two conditional writes on the same
    # criteria would both find nothing and both create.
    creating = [
        (e.resource_type, tuple(sorted(e.params)))
        for e in entries
        if e.params is not None and e.interaction in ("create", "conditional-update")
    ]
    if len(creating) != len(set(creating)):
        raise InvalidRequest("Two entries of the transaction write on the same criteria")
    return entries


def _transaction(run: Run, raws: list[Any]) -> list[dict[str, Any]]:
    try:
        return _transaction_entries(run, raws)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) not in TRANSIENT_SQLSTATES:
            raise
        # Another transaction locked the same rows or criteria in the other order; the database
        # chose this one to abort. Nothing was written, so the client can safely send it again.
        raise Conflict(
            "The transaction collided with a concurrent one and was not applied; send it again"
        ) from None


def _transaction_entries(run: Run, raws: list[Any]) -> list[dict[str, Any]]:
    entries = _parse_all(run, raws)
    # Every entry is authorised before anything is written.
    for entry in entries:
        _step(run, entry, partial(_authorize, run, entry))
    for attempt in range(2):
        try:
            return _apply(run, entries)
        except IntegrityError:
            # A concurrent transaction created an id this one creates (a PUT of a new id) after
            # this one looked: all rolled back; once more, it finds that resource and updates it.
            if attempt:
                raise Conflict(
                    "The transaction collided with a concurrent write of the same resource and "
                    "was not applied; send it again"
                ) from None
            run.references.clear()
    raise AssertionError("unreachable")


def _apply(run: Run, entries: list[Entry]) -> list[dict[str, Any]]:
    """The entries applied in one database transaction, sharing one time (meta.lastUpdated)."""
    by_method = {method: [e for e in entries if e.method == method] for method in TRANSACTION_ORDER}
    results: dict[int, Result] = {}
    batch = WriteBatch()
    with transaction.atomic():
        with storage.deferred_integrity():
            identities = _delete_all(run, by_method["DELETE"], results, batch.now)
            writes = [
                _step(run, e, partial(_settle, run, e, results))
                for e in by_method["POST"] + by_method["PUT"]
            ]
            _check_identities(
                identities + [(e.resource_type, _present(e.logical_id, "id")) for e in writes]
            )
            # A conditional create's match writes nothing; the others are stored together.
            pending = [e for e in writes if e.index not in results]
            _store_together(run, pending, batch, results)
        for entry in by_method["GET"]:
            results[entry.index] = _step(run, entry, partial(_execute, run, entry))
    return [_response_entry(run, results[index]) for index in range(len(entries))]


def _store_together(
    run: Run, entries: list[Entry], batch: WriteBatch, results: dict[int, Result]
) -> None:
    updated = [e for e in entries if e.method == "PUT"]
    batch.lock((e.resource_type, _present(e.logical_id, "id")) for e in updated)
    for entry in entries:
        _step(run, entry, partial(_prepare, run, entry, batch))
    try:
        stored = batch.flush()
    except EntryFailed as failed:
        raise _at_entry(failed.error, failed.label) from None
    for entry, (row, created) in zip(entries, stored, strict=True):
        verb = "Created" if created else "Updated"
        results[entry.index] = Result(201 if created else 200, row, True, message=f"{verb} {row}")


def _prepare(run: Run, entry: Entry, batch: WriteBatch) -> None:
    """Every check of the entry's write that needs the entry alone; the batch stores it later."""
    resource = _rewrite(entry.resource, run.references)
    logical_id = _present(entry.logical_id, "id")
    if entry.method == "POST":
        batch.create(entry.index, entry.resource_type, logical_id, resource)
        return
    guard = authorization.creation_guard(run.request, entry.resource_type)
    batch.update(
        entry.index,
        entry.resource_type,
        logical_id,
        resource,
        if_match=entry.if_match,
        before_create=guard,
    )


def _delete_all(
    run: Run, entries: list[Entry], results: dict[int, Result], now: datetime
) -> list[tuple[str, str]]:
    """Run the deletes; the identities they touched."""
    identities: list[tuple[str, str]] = []
    for entry in entries:
        if entry.interaction == "delete":
            logical_id = _present(entry.logical_id, "id")
            identities.append((entry.resource_type, logical_id))
            action = partial(storage.delete, entry.resource_type, logical_id, now=now)
            _step(run, entry, action)
            results[entry.index] = Result(204)
            continue
        deleted = _step(run, entry, partial(_delete_matching, entry, now))
        if deleted is not None:
            identities.append((deleted.resource_type, deleted.logical_id))
        results[entry.index] = Result(204)
    return identities


def _delete_matching(entry: Entry, now: datetime) -> Resource | None:
    return storage.conditional_delete(
        entry.resource_type, _present(entry.params, "criteria"), now=now
    )


def _settle(run: Run, entry: Entry, results: dict[int, Result]) -> Entry:
    """The entry with its identity settled and its fullUrl registered for references.

    A conditional create that matches is answered here, into `results`: it writes nothing.
    """
    resource_type = entry.resource_type
    if entry.method == "POST":
        logical_id = storage.new_id()
        if entry.if_none_exist is not None:
            match = storage.conditional_create_match(resource_type, entry.if_none_exist)
            if match is not None:
                logical_id = match.logical_id
                results[entry.index] = Result(
                    200, match, written=True, message=f"Matched existing {match}; nothing created"
                )
        entry = replace(entry, logical_id=logical_id, if_none_exist=None)
    elif entry.interaction == "conditional-update":
        resource = _present(entry.resource, "resource")
        logical_id = storage.conditional_target(
            resource_type, _present(entry.params, "criteria"), resource.get("id")
        )
        entry = replace(entry, interaction="update", logical_id=logical_id)
        entry = replace(entry, resource={**resource, "id": logical_id})
    if entry.full_url:
        run.references[entry.full_url] = f"{resource_type}/{entry.logical_id}"
    return entry


def _check_identities(identities: list[tuple[str, str]]) -> None:
    """FHIR forbids two entries of one transaction acting on the same resource."""
    seen: set[tuple[str, str]] = set()
    for identity in identities:
        if identity in seen:
            raise InvalidRequest(
                f"{identity[0]}/{identity[1]} is the target of more than one entry of the "
                "transaction"
            )
        seen.add(identity)
