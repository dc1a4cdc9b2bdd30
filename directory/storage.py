"""Versioned storage of FHIR resources: create, update, delete, read, vread and history.

Every write validates the resource, checks that its local references resolve, stores a new version
and refreshes the search index rows, all in one transaction: a failed write leaves nothing behind.
The index rows are those of the registered index kinds (search/index/, via indexing); bulk loading
is bulkload.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

from django.db import DatabaseError, IntegrityError, connection, connections, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import customparams, events, identifiers, indexing, onestatement
from .errors import (
    Conflict,
    Gone,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    UnprocessableReference,
)
from .formats import expected_version, instant
from .models import ReferenceIndex, Resource, ResourceVersion
from .numbers import bounded_integer
from .profiles import referrers, targets
from .registry import ID_PATTERN, OWNED_TYPES
from .validation import validate_resource


def new_id() -> str:
    return str(uuid.uuid4())


def check_id(logical_id: str) -> str:
    if not ID_PATTERN.match(logical_id or ""):
        raise InvalidRequest(
            "Resource id must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'", expression=["id"]
        )
    return logical_id


def dumps(content: dict) -> str:
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class WriteResult:
    row: Resource
    created: bool

    @property
    def content(self) -> dict[str, Any]:
        # A write's result is a live version: its content is never the deletion's NULL.
        return cast(dict[str, Any], json.loads(cast(str, self.row.content)))


# ---------------------------------------------------------------- reads


def _check_known(resource_type: str | None, logical_id: str) -> None:
    """404 for an id no resource can have (a NUL, say, which the database cannot even compare)."""
    if not ID_PATTERN.match(logical_id or ""):
        raise NotFound(f"{resource_type}/{logical_id[:64]} is not known")


def read(resource_type: str, logical_id: str) -> Resource:
    """The current version, or 404 / 410 (deleted)."""
    _check_known(resource_type, logical_id)
    row = current_row(resource_type, logical_id)
    if row is None:
        raise NotFound(f"{resource_type}/{logical_id} is not known")
    if row.deleted:
        raise Gone(f"{resource_type}/{logical_id} was deleted")
    return row


def current_row(resource_type: str, logical_id: str) -> Resource | None:
    """The resource's row (deleted or not) by type and id: the read by id, compiled once.

    Building and compiling the ORM query was about a fifth of a read's time in process (issue
    10); the statement is Django's own, compiled once per database and run with new values.
    """
    using = router.db_for_read(Resource)
    compiled = _compiled_read(using)
    database = connections[using]
    values = {_TYPE_SENTINEL: resource_type, _ID_SENTINEL: logical_id}
    with database.cursor() as cursor:
        cursor.execute(compiled.sql, [values[name] for name in compiled.order])
        found = cursor.fetchone()
    if found is None:
        return None
    row = list(found)
    # The backend's conversions, as the ORM applies them (SQLite's text dates and 0/1 booleans).
    for position, (functions, expression) in compiled.converters.items():
        for convert in functions:
            row[position] = convert(row[position], expression, database)
    return Resource.from_db(using, compiled.columns, row)


# Stand-ins compiled into the statement, so their order among its parameters is read, not assumed.
_TYPE_SENTINEL, _ID_SENTINEL = "\x00type", "\x00id"


@dataclass(frozen=True)
class _CompiledRead:
    sql: str
    order: list[str]  # which sentinel each parameter stands for
    converters: dict
    columns: list[str]


_compiled_reads: dict[str, _CompiledRead] = {}


def _compiled_read(using: str) -> _CompiledRead:
    found = _compiled_reads.get(using)
    if found is None:
        query = Resource.objects.filter(resource_type=_TYPE_SENTINEL, logical_id=_ID_SENTINEL)
        compiler = query.query.get_compiler(using)
        sql, params = compiler.as_sql()
        selected = [expression for expression, _, _ in compiler.select]
        found = _CompiledRead(
            sql=sql,
            order=list(params),
            converters=compiler.get_converters(selected),
            columns=[expression.target.attname for expression in selected],
        )
        _compiled_reads[using] = found
    return found


def vread(resource_type: str, logical_id: str, version_id: str) -> ResourceVersion:
    _check_known(resource_type, logical_id)
    number = bounded_integer(str(version_id))
    if number is None:
        raise NotFound(f"{resource_type}/{logical_id} has no version '{str(version_id)[:40]}'")
    version = ResourceVersion.objects.filter(
        resource_type=resource_type, logical_id=logical_id, version_id=number
    ).first()
    if version is None:
        if not Resource.objects.filter(resource_type=resource_type, logical_id=logical_id).exists():
            raise NotFound(f"{resource_type}/{logical_id} is not known")
        raise NotFound(f"{resource_type}/{logical_id} has no version {version_id}")
    if version.method == "DELETE":
        raise Gone(f"Version {version_id} of {resource_type}/{logical_id} is a deletion")
    return version


def _history_versions(
    resource_type: str | None = None,
    logical_id: str | None = None,
    since: datetime | None = None,
) -> QuerySet[ResourceVersion]:
    versions = ResourceVersion.objects.all()
    if resource_type:
        versions = versions.filter(resource_type=resource_type)
    else:  # system history: a client's own resources (Subscriptions) are not everyone's
        versions = versions.exclude(resource_type__in=OWNED_TYPES)
    if logical_id:
        _check_known(resource_type, logical_id)
        versions = versions.filter(logical_id=logical_id)
    if since is not None:
        versions = versions.filter(last_updated__gte=since)
    return versions


def history_page(
    *,
    resource_type: str | None = None,
    logical_id: str | None = None,
    since: datetime | None = None,
    before: int | None = None,
    count: int = 20,
) -> tuple[list[ResourceVersion], bool]:
    """Versions newest first, keyset-paged on the version sequence; returns (page, more)."""
    if logical_id:
        _check_known(resource_type, logical_id)
    if (
        logical_id
        and not Resource.objects.filter(resource_type=resource_type, logical_id=logical_id).exists()
    ):
        raise NotFound(f"{resource_type}/{logical_id} is not known")
    versions = _history_versions(resource_type, logical_id, since)
    if before is not None:
        versions = versions.filter(id__lt=before)
    rows = list(versions.order_by("-id")[: count + 1])
    return rows[:count], len(rows) > count


def history_previous_before(
    *,
    resource_type: str | None = None,
    logical_id: str | None = None,
    since: datetime | None = None,
    before: int,
    count: int,
) -> int | None:
    """The `before` key of the page newer than the one that starts below `before`.

    None when that newer page is the first page, which needs no key.
    """
    if count == 0:
        return None
    newer = _history_versions(resource_type, logical_id, since).filter(id__gte=before)
    keys = list(newer.order_by("id").values_list("id", flat=True)[: count + 1])
    if len(keys) <= count:
        return None
    return keys[count - 1] + 1


def history_count(
    *,
    resource_type: str | None = None,
    logical_id: str | None = None,
    since: datetime | None = None,
) -> int:
    return _history_versions(resource_type, logical_id, since).count()


# ---------------------------------------------------------------- writes


def create(
    resource_type: str,
    content: dict,
    *,
    if_none_exist: str | None = None,
    logical_id: str | None = None,
) -> WriteResult:
    """Create with a server-assigned id; with `if_none_exist`, return the one existing match.

    `logical_id` is an id the server assigned beforehand (a transaction resolving its references
    before it writes); a client's id in the content is ignored, as for every create.
    """
    canonical = validate_resource(resource_type, content)
    with transaction.atomic():
        if if_none_exist is not None:
            existing = conditional_create_match(resource_type, if_none_exist)
            if existing is not None:
                return WriteResult(existing, created=False)
        row = _store(resource_type, logical_id or new_id(), canonical, method="POST", current=None)
    return WriteResult(row, created=True)


def update(
    resource_type: str,
    logical_id: str,
    content: dict,
    *,
    if_match: str | None = None,
    before_create: Callable[[], None] | None = None,
) -> WriteResult:
    """Update, or create with the client's id when it does not exist yet.

    `before_create` runs inside the transaction, with the row locked, when the write would create
    (a new or a deleted id); whatever it raises aborts the write. Deciding there, not before the
    transaction, means no concurrent delete or create can change which of the two this write is.
    """
    canonical = validated_update(resource_type, logical_id, content)
    expected = expected_version(if_match) if if_match is not None else None
    for attempt in range(2):
        try:
            with transaction.atomic():
                current = _lock_current(resource_type, logical_id)
                check_version(resource_type, logical_id, current, expected)
                revived = current is None or current.deleted
                if revived and before_create is not None:
                    before_create()
                row = _store(resource_type, logical_id, canonical, method="PUT", current=current)
                return WriteResult(row, created=revived)
        except IntegrityError:
            # Two clients created the same new id at once; the loser retries as an update.
            if attempt:
                raise Conflict(f"{resource_type}/{logical_id} was written concurrently") from None
    raise AssertionError("unreachable")


def validated_update(resource_type: str, logical_id: str, content: dict) -> dict:
    check_id(logical_id)
    body_id = content.get("id") if isinstance(content, dict) else None
    if body_id is None:
        raise InvalidRequest("The resource in an update must carry its id", expression=["id"])
    if body_id != logical_id:
        raise InvalidRequest(
            f"Resource id '{body_id}' does not match the id '{logical_id}' in the URL",
            expression=["id"],
        )
    return validate_resource(resource_type, content)


def check_write(
    resource_type: str,
    content: dict,
    *,
    logical_id: str | None = None,
    if_match: str | None = None,
) -> dict:
    """Every check of `create` (no `logical_id`) or `update`, writing nothing: the canonical
    content, or the FHIRError the write would raise.

    Inside a caller's transaction the row and the identifiers claimed stay locked until it ends,
    so a write later in that transaction meets the state checked here (a form validates with
    this, then writes).
    """
    if logical_id is None:
        canonical = validate_resource(resource_type, content)
        with transaction.atomic():
            _check_storable(resource_type, new_id(), canonical)
        return canonical
    canonical = validated_update(resource_type, logical_id, content)
    expected = expected_version(if_match) if if_match is not None else None
    with transaction.atomic():
        current = _lock_current(resource_type, logical_id)
        check_version(resource_type, logical_id, current, expected)
        _check_storable(resource_type, logical_id, canonical)
    return canonical


def conditional_target(
    resource_type: str, pairs: list[tuple[str, str]], body_id: str | None
) -> str:
    """The id a conditional update writes (FHIR R4 3.1.0.4.3).

    No match: the body's id (update as create) or a new one. One match: that resource, which a
    body id must name. Several: 412. Call inside the write's transaction: the criteria stay
    locked until it ends, so identical conditional writes serialize.
    """
    matches = _locked_matches(resource_type, pairs)
    if len(matches) > 1:
        raise PreconditionFailed(f"The criteria match more than one {resource_type}")
    if not matches:
        return body_id or new_id()
    found = matches[0].logical_id
    if body_id is not None and body_id != found:
        raise InvalidRequest(
            f"Resource id '{body_id}' is not the id of the resource the criteria match",
            expression=["id"],
        )
    return found


def conditional_update(
    resource_type: str,
    pairs: list[tuple[str, str]],
    content: dict,
    *,
    if_match: str | None = None,
    before_create: Callable[[], None] | None = None,
) -> WriteResult:
    """`PUT Type?criteria`: update the one match, or create when nothing matches."""
    if not isinstance(content, dict):
        raise InvalidRequest("A resource must be a JSON object")
    body_id = content.get("id")
    with transaction.atomic():
        logical_id = conditional_target(resource_type, pairs, body_id)
        return update(
            resource_type,
            logical_id,
            {**content, "id": logical_id},
            if_match=if_match,
            before_create=before_create,
        )


def conditional_delete(
    resource_type: str, pairs: list[tuple[str, str]], *, now: datetime | None = None
) -> Resource | None:
    """`DELETE Type?criteria` in single-delete mode: the one match, none, or 412 for several."""
    with transaction.atomic():
        matches = _locked_matches(resource_type, pairs)
        if len(matches) > 1:
            raise PreconditionFailed(
                f"The criteria match more than one {resource_type}; this server deletes one at "
                "a time"
            )
        if not matches:
            return None
        delete(resource_type, matches[0].logical_id, now=now)
        return matches[0]


def delete(resource_type: str, logical_id: str, *, now: datetime | None = None) -> bool:
    """Delete the current version; True when something was deleted.

    `now` is the deletion's time when the caller's writes share one (a transaction Bundle)."""
    check_id(logical_id)
    with transaction.atomic():
        current = _lock_current(resource_type, logical_id, deleting=True)
        if current is None or current.deleted:
            return False
        pending = _deferred.get()
        if pending is None:
            _refuse_if_referenced(resource_type, logical_id)
        else:
            pending.deleted.add((resource_type, logical_id))
        # Before the index rows go: a subscription's filter is judged on the deleted resource.
        events.changed(resource_type, logical_id, current.version_id + 1, "delete")
        now = now or timezone.now()
        current.version_id += 1
        current.last_updated = now
        current.deleted = True
        current.content = None
        current.sort_name = ""
        current.save()
        ResourceVersion.objects.create(
            resource=current,
            resource_type=resource_type,
            logical_id=logical_id,
            version_id=current.version_id,
            last_updated=now,
            method="DELETE",
            content=None,
        )
        indexing.delete_rows([current.pk], current.resource_type)
    return True


def _lock_current(
    resource_type: str, logical_id: str, *, deleting: bool = False
) -> Resource | None:
    # Only a delete takes FOR UPDATE, the lock a referrer's FOR KEY SHARE waits for (see
    # missing_resources); an update changes no key, so it need not wait for referrers, nor they
    # for it (PostgreSQL's own foreign keys lock alike).
    return (
        Resource.objects.select_for_update(no_key=not deleting)
        .filter(resource_type=resource_type, logical_id=logical_id)
        .first()
    )


def check_version(
    resource_type: str, logical_id: str, current: Resource | None, expected: int | None
) -> None:
    if expected is None:
        return
    if current is None or current.deleted:
        raise PreconditionFailed(
            f"If-Match given but {resource_type}/{logical_id} has no current version"
        )
    if current.version_id != expected:
        raise PreconditionFailed(
            f"{resource_type}/{logical_id} is at version {current.version_id}, not {expected}"
        )


def conditional_create_match(resource_type: str, criteria: str) -> Resource | None:
    """The one live resource If-None-Exist names, None, or 412; locks the criteria (see below)."""
    pairs = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise InvalidRequest("If-None-Exist must carry search criteria, e.g. identifier=sys|value")
    matches = _locked_matches(resource_type, pairs)
    if len(matches) > 1:
        raise PreconditionFailed(f"If-None-Exist criteria match more than one {resource_type}")
    return matches[0] if matches else None


def _locked_matches(resource_type: str, pairs: list[tuple[str, str]]) -> list[Resource]:
    """Up to two live matches of the criteria, with the criteria locked for the transaction."""
    from .search import matching_rows

    if not pairs:
        raise InvalidRequest("A conditional interaction needs search criteria")
    _serialize_conditional(resource_type, pairs)
    return matching_rows(resource_type, pairs, limit=2)


def _serialize_conditional(resource_type: str, pairs: list[tuple[str, str]]) -> None:
    """Hold a transaction lock on these criteria so identical conditional writes serialize.

    The key is the sorted criteria, so `a=1&b=2` and `b=2&a=1` wait for each other; conditional
    creates, updates and deletes on the same criteria share it.
    """
    if connection.vendor == "postgresql":
        key = f"{resource_type}?{urlencode(sorted(pairs))}"
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])


def _refuse_if_referenced(resource_type: str, logical_id: str) -> None:
    referrers = list(ReferenceIndex.objects.pointing_at(resource_type, logical_id).referrers()[:5])
    if referrers:
        names = ", ".join(f"{t}/{i}" for t, i in referrers)
        raise Conflict(
            f"{resource_type}/{logical_id} is still referenced by {names}; "
            "remove those references first"
        )


def _check_references(resource_type: str, logical_id: str, rows: indexing.IndexRows) -> None:
    local = {ref.key for _, ref in rows.references if not ref.external}
    local.discard((resource_type, logical_id))
    _refuse_missing(local)


def _refuse_missing(local: set[tuple[str, str]]) -> None:
    """422 unless every (type, id) is a live resource, each held live until the write commits."""
    missing = missing_resources(local, hold=True)
    if missing:
        names = ", ".join(f"{t}/{i}" for t, i in sorted(missing))
        raise UnprocessableReference(f"Referenced resource does not exist: {names}")


def missing_resources(local: set[tuple[str, str]], *, hold: bool = False) -> set[tuple[str, str]]:
    """The (type, id) pairs that name no live resource.

    `hold` (a write checking its references, inside its transaction) keeps the live ones from
    being deleted until the transaction ends; otherwise a concurrent delete, whose check for
    referrers cannot see this write's uncommitted index rows, could commit beside it and leave
    its references dangling.
    """
    missing = set(local)
    by_type: dict[str, set[str]] = {}
    for rtype, rid in local:
        by_type.setdefault(rtype, set()).add(rid)
    for rtype, ids in sorted(by_type.items()):
        live: Iterable[str]
        if hold and connection.vendor == "postgresql":
            live = _live_held(rtype, ids)
        else:
            live = Resource.objects.filter(
                resource_type=rtype, logical_id__in=ids, deleted=False
            ).values_list("logical_id", flat=True)
        for found in live:
            missing.discard((rtype, found))
    return missing


def _live_held(resource_type: str, ids: set[str]) -> list[str]:
    """The live ids among `ids`, their rows locked FOR KEY SHARE until the transaction ends.

    A delete locks its row FOR UPDATE (`_lock_current`): it waits for this write to commit and
    then finds its references (409), or this waits for the delete and, rechecking the row as
    READ COMMITTED does, finds it deleted (422). Referrers do not wait for one another.
    """
    alias = router.db_for_write(Resource)
    table = connections[alias].ops.quote_name(Resource._meta.db_table)
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT logical_id FROM {table} WHERE resource_type = %s "  # noqa: S608
            "AND logical_id = ANY(%s) AND NOT deleted ORDER BY id FOR KEY SHARE",
            [resource_type, sorted(ids)],
        )
        return [row[0] for row in cursor.fetchall()]


# PostgreSQL's deadlock_detected and serialization_failure: the database aborted the transaction.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def aborted_by_database(exc: DatabaseError) -> bool:
    """The database chose this transaction as a deadlock's victim: nothing of it stays, so it
    can run again (bulk writes locking many targets meet deletes locking them in another order)."""
    return getattr(exc.__cause__, "sqlstate", None) in TRANSIENT_SQLSTATES


def stamped(content: dict, logical_id: str, version_id: int, moment: datetime) -> dict:
    """The content as stored: its id, and meta.versionId and lastUpdated of this version."""
    result = {"resourceType": content["resourceType"], "id": logical_id}
    result.update({k: v for k, v in content.items() if k not in ("resourceType", "id")})
    meta = dict(result.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = instant(moment)
    result["meta"] = meta
    # Keep resourceType, id, meta at the top, as FHIR JSON conventionally reads.
    ordered = {k: result[k] for k in ("resourceType", "id", "meta")}
    ordered.update({k: v for k, v in result.items() if k not in ordered})
    return ordered


def _check_storable(resource_type: str, logical_id: str, canonical: dict) -> indexing.IndexRows:
    """The checks of a write before it stores anything; the index rows it would store."""
    customparams.ensure_fresh()  # extract with the custom parameters other workers stored
    customparams.before_store(resource_type, logical_id, canonical)  # custom SearchParameters
    rows = indexing.extract(resource_type, canonical)
    if _deferred.get() is None:
        _check_references(resource_type, logical_id, rows)
        targets.check(canonical)  # after existence: a missing target is named as missing
    identifiers.check_unique(resource_type, logical_id, canonical)
    return rows


def _store(
    resource_type: str, logical_id: str, canonical: dict, *, method: str, current: Resource | None
) -> Resource:
    revived = current is None or current.deleted  # a new or deleted id: a create for listeners
    rows = _check_storable(resource_type, logical_id, canonical)
    pending = _deferred.get()
    now = timezone.now()
    version_id = current.version_id + 1 if current is not None else 1
    content = dumps(stamped(canonical, logical_id, version_id, now))
    change = events.Change(resource_type, logical_id, version_id, "create" if revived else "update")
    # Resource, version and index rows in one statement where the database allows it, with the
    # listeners' probes (whether anyone subscribes). No savepoint of its own: a duplicate id
    # (IntegrityError) aborts the caller's transaction, which `update` retries whole.
    asked = events.probes([change])
    current, answers = onestatement.store(
        resource_type,
        logical_id,
        now,
        content,
        rows,
        method,
        current=current,
        probes=[(a.sql, a.params) for a in asked],
    )
    if pending is None and not revived:
        referrers.check_referrers(current)  # written and indexed: judged as stored
    idle = {a.listener for a, answer in zip(asked, answers, strict=True) if not answer}
    events.changed_many([change], idle=idle)
    if pending is not None:
        pending.written.add(current.pk)
    return current


# ---------------------------------------------------------------- deferred integrity checks


@dataclass
class _Pending:
    written: set[int] = field(default_factory=set)  # Resource pks
    deleted: set[tuple[str, str]] = field(default_factory=set)


_deferred: ContextVar[_Pending | None] = ContextVar("directory_deferred_checks", default=None)


def written_together(pks: list[int]) -> bool:
    """Note resources written outside `_store` (a WriteBatch) for the deferred checks; False when
    no deferred check runs, so the writer must check their references itself."""
    pending = _deferred.get()
    if pending is None:
        return False
    pending.written.update(pks)
    return True


def refuse_missing(local: set[tuple[str, str]]) -> None:
    """422 unless every (type, id) is a live resource."""
    _refuse_missing(local)


@contextmanager
def references_unchecked() -> Iterator[None]:
    """Writes skip their reference check; for a caller that checks references itself at its end
    (bulk import, where lines may point forward)."""
    token = _deferred.set(_Pending())
    try:
        yield
    finally:
        _deferred.reset(token)


@contextmanager
def deferred_integrity() -> Iterator[None]:
    """Check references when several writes are done, not after each (use inside one transaction).

    Resources written together may point at each other in any order, even in cycles, and a
    delete may be allowed because a later write in the same transaction drops the last
    reference to it. At the end every written resource's local references must resolve and no
    live resource may still point at a deleted one; otherwise the error aborts the transaction.
    """
    pending = _Pending()
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
    _check_pending(pending)


def _check_pending(pending: _Pending) -> None:
    targets = ReferenceIndex.objects.filter(resource_id__in=pending.written, external=False)
    referrers: dict[tuple[str, str], set[str]] = {}
    for rtype, lid, ttype, tid in targets.values_list(
        "resource_type", "resource__logical_id", "target_type", "target_id"
    ):
        if (rtype, lid) != (ttype, tid):
            referrers.setdefault((ttype, tid), set()).add(f"{rtype}/{lid}")
    missing = missing_resources(set(referrers), hold=True)
    if missing:
        # Name the writers too: several resources were written, the client must know which.
        named = "; ".join(
            f"{t}/{i} (referenced by {', '.join(sorted(referrers[(t, i)]))})"
            for t, i in sorted(missing)
        )
        raise UnprocessableReference(f"Referenced resource does not exist: {named}")
    _check_pending_targets(pending.written)
    for resource_type, logical_id in sorted(pending.deleted):
        _refuse_if_referenced(resource_type, logical_id)


def _check_pending_targets(written: set[int]) -> None:
    """targetProfile conformance of resources written together, now that every target is
    stored (an entry may name one written after it)."""
    rows = Resource.objects.filter(pk__in=written, deleted=False).order_by("pk")
    for rtype, lid, content in rows.values_list("resource_type", "logical_id", "content"):
        if content and '"profile"' in content:  # claims no profile: nothing to judge
            targets.check(json.loads(content), referrer=f"{rtype}/{lid}")
    # Updated targets against the referrers left pointing at them once the Bundle is written.
    for row in rows.filter(version_id__gt=1):
        referrers.check_referrers(row)


def replace_index_rows(items: list[tuple[Resource, indexing.IndexRows]]) -> None:
    """Swap the index rows of stored resources for freshly extracted ones (reindexing)."""
    indexing.delete_rows([row.pk for row, _ in items])
    indexing.insert_rows(items)
