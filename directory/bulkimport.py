"""Bulk import of NDJSON: one FHIR resource per line, each validated, stored whole or not at all.

Used by `$import` (fhirapi/bulk_import.py, a job in a background thread) and by
`manage.py importndjson`. The file is streamed line by line, so memory stays flat in its size:

- each line is parsed, validated exactly as the API validates a write (`validate_resource`:
  structure, invariants, bindings, Plan-Net profiles, NPI check digits) and its index rows are
  extracted; a line that fails is reported with its number, nothing of it is stored;
- lines are written in batches, one transaction each: new ids in one bulk insert (COPY on
  PostgreSQL), inside a savepoint; if the batch fails (a duplicate identifier, a database
  refusal) its halves are retried in savepoints of their own, down to single resources, so a
  bad line costs only itself. A resource is stored with its version and every index row, or
  not at all;
- resources keep their ids; an id already stored is updated (a new version, as an update-as-create
  with the client's id would), through the same storage path as `PUT`;
- references may point forward, in any order: a batch is not refused for a reference to a
  resource not stored yet. What is still dangling at the end is reported as a warning with the
  line numbers that hold it (the resources stay stored, as `generatedirectory` stores them).
  The targets that are live when a batch checks them stay locked until it commits (FOR KEY SHARE
  on PostgreSQL), so a concurrent delete either waits and is refused for the new referrers or
  commits first and the references are reported as dangling: never deleted unreported.
- a resource claiming a Plan-Net or NDH profile must point at targets conforming to the
  element's targetProfile, judged by the API's rule (profiles/targets.py) once its batch is
  written, so a target anywhere in the batch counts: a line whose stored target does not conform
  is refused and the batch written again without it. A target not stored yet (a forward
  reference) is judged at the end, and a failing line reported as a warning: it is stored.

Preparing lines (parse, validate, extract) is the cost; with `workers` > 1 it runs in forked
processes while this one writes, which suits the command, not a request-serving worker.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, connections, transaction
from django.utils import timezone

from . import bulkload, customparams, events, identifiers, indexing, storage
from .errors import FHIRError, InvalidRequest
from .models import Resource
from .profiles import referrers, targets
from .registry import RESOURCE_TYPES, SHARED_TYPES
from .validation import parse_json, validate_resource

# Dangling references named per target in the warning; the rest are counted.
LINES_PER_WARNING = 5
# Dangling targets remembered for the final check; past this many they are only counted, so a file
# of references to nothing cannot grow memory without bound.
MAX_UNRESOLVED = 100_000
# Targets looked up per query (SQLite caps the parameters of one statement).
LOOKUP_CHUNK = 5000
# Lines handed to a worker process at once: large enough to amortise pickling.
CHUNK_LINES = 250


class Cancelled(Exception):
    """The job was cancelled between two batches; what was committed stays."""


@dataclass
class Prepared:
    """A line that parsed and validated: what a write needs, nothing read from the database."""

    line: int
    resource_type: str
    logical_id: str
    content: dict
    rows: indexing.IndexRows

    @property
    def key(self) -> tuple[str, str]:
        return self.resource_type, self.logical_id


@dataclass
class Refused:
    line: int
    issues: list[dict]
    key: tuple[str, str] | None = None


@dataclass
class Summary:
    """Running totals of one import."""

    lines: int = 0  # lines read, blank ones included (line numbers count them)
    counts: Counter = field(default_factory=Counter)  # stored per type
    errors: int = 0
    warnings: int = 0

    @property
    def stored(self) -> int:
        return sum(self.counts.values())


# ---------------------------------------------------------------- reading lines


def count_lines(path: Path | str) -> int:
    """Lines in a file, read in blocks (the progress total; a last line without \\n counts)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def read_lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line; None for a line longer than `limit` (skipped unread
    into memory, so one huge line cannot exhaust it)."""
    number = 0
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, raw


# ---------------------------------------------------------------- preparing a line


def prepare(
    number: int, raw: bytes | None, writable: frozenset[str] | None
) -> Prepared | Refused | None:
    """Parse and validate one line; None for a blank line."""
    if raw is None:
        limit = settings.FHIR_MAX_BODY_BYTES
        return _refused(number, InvalidRequest(f"Line is longer than {limit} bytes"), None)
    if not raw.strip():
        return None
    key = None
    try:
        content = parse_json(raw)
        resource_type = content.get("resourceType")
        if not isinstance(resource_type, str) or resource_type not in RESOURCE_TYPES:
            raise InvalidRequest(
                f"Resource type {str(resource_type)[:40]!r} is not supported",
                code="not-supported",
                expression=["resourceType"],
            )
        if resource_type not in SHARED_TYPES:
            raise InvalidRequest(
                f"{resource_type} is not imported: a client creates its own through the API",
                code="not-supported",
                expression=["resourceType"],
            )
        logical_id = content.get("id")
        if not isinstance(logical_id, str):
            raise InvalidRequest("An imported resource must carry its id", expression=["id"])
        storage.check_id(logical_id)
        key = (resource_type, logical_id)
        if writable is not None and resource_type not in writable:
            raise FHIRError(
                f"The token does not grant create and update on {resource_type}",
                code="forbidden",
                status=403,
            )
        valid = validate_resource(resource_type, content, canonical=False)
        rows = indexing.extract(resource_type, valid)
    except FHIRError as exc:
        return _refused(number, exc, key)
    return Prepared(number, resource_type, logical_id, valid, rows)


def _refused(number: int, exc: FHIRError, key: tuple[str, str] | None) -> Refused:
    return Refused(number, exc.issues(), key)


def _prepare_chunk(
    chunk: list[tuple[int, bytes | None]], writable: frozenset[str] | None
) -> list[Prepared | Refused | None]:
    return [prepare(number, raw, writable) for number, raw in chunk]


def prepared_lines(
    lines: Iterable[tuple[int, bytes | None]],
    writable: frozenset[str] | None,
    workers: int,
    ahead: int = 1000,
) -> Iterator[Prepared | Refused | None]:
    """Prepare lines in order, here or in `workers` forked processes.

    The workers run up to `ahead` lines (plus two chunks each) in front of the consumer: enough
    to keep them busy while it writes a batch, and a bound, so memory stays flat in the file size.
    """
    if workers <= 1:
        for number, raw in lines:
            yield prepare(number, raw, writable)
        return
    connections.close_all()  # a forked child must not share the parent's database socket
    pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        pending: deque = deque()
        limit = 2 * workers + ahead // CHUNK_LINES
        for chunk in _chunks(lines, CHUNK_LINES):
            pending.append(pool.apply_async(_prepare_chunk, (chunk, writable)))
            if len(pending) > limit:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()
    finally:
        pool.terminate()
        pool.join()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------- the error file


class ErrorFile:
    """NDJSON OperationOutcomes, one per refused line (and per dangling reference at the end)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def refused(self, refused: Refused) -> None:
        where = f"Line {refused.line}"
        if refused.key:
            where += f" ({refused.key[0]}/{refused.key[1]})"
        issues = [
            {**issue, "diagnostics": f"{where}: {issue.get('diagnostics', '')}"}
            for issue in refused.issues
        ]
        self._write(issues)

    def dangling(self, target: tuple[str, str], lines: list[int], more: int) -> None:
        named = ", ".join(str(n) for n in lines) + (f" and {more} more" if more else "")
        self._write(
            [
                {
                    "severity": "warning",
                    "code": "not-found",
                    "diagnostics": f"Line {named}: stored, but the referenced resource "
                    f"{target[0]}/{target[1]} does not exist",
                }
            ]
        )

    def nonconforming(self, line: int, key: tuple[str, str], issues: list[dict]) -> None:
        """A stored line whose forward reference, judged at the end, fails its targetProfile."""
        where = f"Line {line} ({key[0]}/{key[1]}): stored, but"
        self._write(
            [
                {**issue, "severity": "warning", "diagnostics": f"{where} {issue['diagnostics']}"}
                for issue in issues
            ]
        )

    def untracked(self, count: int) -> None:
        self._write(
            [
                {
                    "severity": "warning",
                    "code": "too-costly",
                    "diagnostics": f"{count} more references to resources not stored when their "
                    "line was were not checked again at the end",
                }
            ]
        )

    def _write(self, issues: list[dict]) -> None:
        outcome = {"resourceType": "OperationOutcome", "issue": issues}
        self.stream.write(storage.dumps(outcome) + "\n")


# ---------------------------------------------------------------- the import


class Importer:
    """Streams prepared lines into the database in batches; see the module docstring."""

    def __init__(
        self,
        errors: ErrorFile,
        *,
        writable: frozenset[str] | None = None,
        batch_size: int | None = None,
        workers: int = 1,
        progress: Callable[[Summary], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.errors = errors
        self.writable = writable
        self.batch_size = max(1, batch_size or settings.FHIR_IMPORT_BATCH_SIZE)
        self.workers = workers
        self.progress = progress or (lambda summary: None)
        self.cancelled = cancelled or (lambda: False)
        self.summary = Summary()
        # Referenced (type, id) not stored when their referrer was: line numbers, checked again
        # at the end. Only forward references land here, so it stays small for ordered input.
        self.unresolved: dict[tuple[str, str], list[int]] = {}
        self.unresolved_more: Counter = Counter()
        # Referrers with a constrained reference to a target not stored when their batch was
        # written: the line that wrote them, judged again at the end.
        self.unjudged: dict[tuple[str, str], int] = {}
        self.untracked = 0

    def run(self, lines: Iterable[tuple[int, bytes | None]]) -> Summary:
        customparams.ensure_fresh(force=True)  # extract with every active search parameter
        batch: list[Prepared] = []
        prepared = prepared_lines(
            self._counted(lines), self.writable, self.workers, ahead=2 * self.batch_size
        )
        for item in prepared:
            if isinstance(item, Refused):
                self._refuse(item)
            elif item is not None:
                batch.append(item)
            if len(batch) >= self.batch_size:
                self._flush(batch)
                batch = []
        self._flush(batch)
        self._report_dangling()
        self._judge_forward()
        return self.summary

    def _counted(
        self, lines: Iterable[tuple[int, bytes | None]]
    ) -> Iterator[tuple[int, bytes | None]]:
        for number, raw in lines:
            self.summary.lines = number
            yield number, raw

    def _refuse(self, refused: Refused) -> None:
        self.summary.errors += 1
        self.errors.refused(refused)

    def _flush(self, batch: list[Prepared]) -> None:
        if batch:
            write_batch(batch, self)
        self.progress(self.summary)
        if self.cancelled():
            raise Cancelled()

    def stored(self, item: Prepared) -> None:
        self.summary.counts[item.resource_type] += 1

    def note_unresolved(self, target: tuple[str, str], line: int) -> None:
        if target not in self.unresolved and len(self.unresolved) >= MAX_UNRESOLVED:
            self.untracked += 1
            return
        lines = self.unresolved.setdefault(target, [])
        if len(lines) < LINES_PER_WARNING:
            lines.append(line)
        else:
            self.unresolved_more[target] += 1

    def note_unjudged(self, referrer: tuple[str, str], line: int) -> None:
        if referrer not in self.unjudged and len(self.unjudged) >= MAX_UNRESOLVED:
            self.untracked += 1
            return
        self.unjudged[referrer] = line  # the last line wrote what is stored

    def _judge_forward(self) -> None:
        """The targetProfile of the references that pointed forward, now that the file is in:
        the referrers as stored, one query per type and chunk (a dangling target was warned of)."""
        keys = sorted(self.unjudged)
        for start in range(0, len(keys), LOOKUP_CHUNK):
            stored = targets.stored_contents(keys[start : start + LOOKUP_CHUNK])
            found = [(content, targets.claims(content)) for content in stored.values()]
            for key, judged in zip(stored, targets.judge(found), strict=True):
                if judged.issues:
                    self.summary.warnings += 1
                    self.errors.nonconforming(self.unjudged[key], key, judged.issues)

    def _report_dangling(self) -> None:
        for target in sorted(_missing(self.unresolved)):
            self.summary.warnings += 1
            self.errors.dangling(target, self.unresolved[target], self.unresolved_more[target])
        if self.untracked:
            self.summary.warnings += 1
            self.errors.untracked(self.untracked)


# ---------------------------------------------------------------- writing a batch


class _BatchLog:
    """What a batch's transaction did to the import's totals and error file, kept until it
    commits: a batch the database aborts (a deadlock's victim) runs again from nothing."""

    def __init__(self) -> None:
        self.done: list[Callable[[Importer], None]] = []

    def stored(self, item: Prepared) -> None:
        self.done.append(lambda importer: importer.stored(item))

    def refuse(self, refused: Refused) -> None:
        self.done.append(lambda importer: importer._refuse(refused))

    def note_unresolved(self, target: tuple[str, str], line: int) -> None:
        self.done.append(lambda importer: importer.note_unresolved(target, line))

    def note_unjudged(self, referrer: tuple[str, str], line: int) -> None:
        self.done.append(lambda importer: importer.note_unjudged(referrer, line))

    def extend(self, other: _BatchLog) -> None:
        self.done.extend(other.done)

    def replay(self, importer: Importer) -> None:
        for step in self.done:
            step(importer)


def write_batch(batch: list[Prepared], importer: Importer) -> None:
    """Store a batch in one transaction; new ids in bulk, the others as updates.

    A batch the database aborts as a deadlock's victim (its target locks met a transaction that
    deletes several of them in another order) runs again; after the last try each of its lines
    is refused with a clean error rather than the import failing.
    """
    for _ in range(bulkload.BATCH_ATTEMPTS):
        log = _BatchLog()
        try:
            with transaction.atomic():
                _write_batch(batch, log)
        except OperationalError as exc:
            if not storage.aborted_by_database(exc):
                raise
            continue
        log.replay(importer)
        return
    issue = {
        "severity": "error",
        "code": "transient",
        "diagnostics": "Not stored: the batch kept colliding with concurrent writes; import the "
        "line again",
    }
    for item in batch:
        importer._refuse(Refused(item.line, [issue], item.key))


class _Nonconforming(Exception):
    """Lines of a written batch whose targets fail their targetProfile: the batch is undone."""

    def __init__(self, refused: list[Refused]) -> None:
        super().__init__(f"{len(refused)} lines fail a targetProfile")
        self.refused = refused


def _write_batch(batch: list[Prepared], log: _BatchLog) -> None:
    """Write the batch in a savepoint, then judge its targetProfiles with every line written
    (a target may come later in the batch). Lines that fail are refused and the savepoint rolled
    back to write the rest again: rare, and each round removes at least one line."""
    while True:
        attempt = _BatchLog()
        try:
            with transaction.atomic():
                stored, updated = _write_lines(batch, attempt)
                _judge_targets(stored, attempt)
                _judge_referrers(updated)
        except _Nonconforming as exc:
            for refused in exc.refused:
                log.refuse(refused)
            lines = {refused.line for refused in exc.refused}
            batch = [item for item in batch if item.line not in lines]
            continue
        log.extend(attempt)
        return


def _judge_targets(stored: list[Prepared], log: _BatchLog) -> None:
    """Raise _Nonconforming for the stored lines whose stored targets fail the targetProfile
    their claimed profile requires (one query per target type for the batch); a target still
    not stored is left to the end of the import."""
    found = [(item, targets.claims(item.content)) for item in stored]
    found = [(item, claims) for item, claims in found if claims]
    if not found:
        return
    # The batch's own lines were validated against the profiles they claim: not judged again.
    validated = {item.key: targets.claimed_known(item.content) for item in stored}
    judged = targets.judge([(item.content, claims) for item, claims in found], validated)
    refused = []
    for (item, _), result in zip(found, judged, strict=True):
        if result.issues:
            refused.append(Refused(item.line, result.issues, item.key))
        elif result.unstored:
            log.note_unjudged(item.key, item.line)
    if refused:
        raise _Nonconforming(refused)


def _judge_referrers(updated: list[Prepared]) -> None:
    """Raise _Nonconforming for the updates that make a target stop conforming to a profile a
    stored referrer requires of it, as `PUT` is refused (409), judged on the state the batch
    leaves: after its referrer lines were judged, so a role refused for its target does not
    block that target's update too."""
    if not updated:
        return
    lines = {item.key: item for item in updated}
    refused = []
    for row in _rows(list(lines)):
        try:
            referrers.check_referrers(row)
        except FHIRError as exc:
            item = lines[row.resource_type, row.logical_id]
            refused.append(Refused(item.line, exc.issues(), item.key))
    if refused:
        raise _Nonconforming(refused)


def _rows(keys: list[tuple[str, str]]) -> list[Resource]:
    by_type: dict[str, list[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, []).append(rid)
    rows: list[Resource] = []
    for rtype, ids in by_type.items():
        rows += Resource.objects.filter(resource_type=rtype, logical_id__in=ids).order_by("pk")
    return rows


def _write_lines(batch: list[Prepared], log: _BatchLog) -> tuple[list[Prepared], list[Prepared]]:
    """The lines stored, and of those the updates: new ids in bulk, the others one by one."""
    existing = _existing_keys(batch)
    fresh: list[Prepared] = []
    updates: list[Prepared] = []
    seen: set[tuple[str, str]] = set()
    for item in batch:
        # An id already stored, or repeated in this batch, is a new version: an update.
        (updates if item.key in existing or item.key in seen else fresh).append(item)
        seen.add(item.key)
    stored = _insert_new(fresh, log)
    updated = [item for item in updates if _update(item, log)]
    stored += updated
    _note_references(stored, log)
    return stored, updated


def _existing_keys(batch: list[Prepared]) -> set[tuple[str, str]]:
    by_type: dict[str, set[str]] = {}
    for item in batch:
        by_type.setdefault(item.resource_type, set()).add(item.logical_id)
    found: set[tuple[str, str]] = set()
    for rtype, ids in by_type.items():
        rows = Resource.objects.filter(resource_type=rtype, logical_id__in=ids)
        found.update((rtype, lid) for lid in rows.values_list("logical_id", flat=True))
    return found


def _insert_new(items: list[Prepared], log: _BatchLog) -> list[Prepared]:
    """All in one savepoint; if that fails, each half in its own, down to single resources.

    Halving finds k bad lines among n in about k log n savepoints rather than n, so a file with
    a bad line in every batch still loads at bulk speed; only the bad resources are lost.
    """
    if len(items) <= 1:
        return [item for item in items if _insert_one(item, log)]
    try:
        with transaction.atomic():
            _insert(items)
    except (FHIRError, DatabaseError):
        middle = len(items) // 2
        return _insert_new(items[:middle], log) + _insert_new(items[middle:], log)
    for item in items:
        log.stored(item)
    return items


def _insert_one(item: Prepared, log: _BatchLog) -> bool:
    try:
        with transaction.atomic():
            _insert([item])
    except FHIRError as exc:
        log.refuse(Refused(item.line, exc.issues(), item.key))
        return False
    except DatabaseError:
        # Most likely a concurrent write created the id since the batch looked: store a version.
        return _update(item, log)
    log.stored(item)
    return True


def _insert(items: list[Prepared]) -> None:
    """Resources, first versions and index rows of new ids, through storage's bulk writers."""
    now = timezone.now()
    for item in items:
        customparams.before_store(item.resource_type, item.logical_id, item.content)
    identifiers.check_unique_batch([(i.resource_type, i.logical_id, i.content) for i in items])
    new_rows = [
        (
            i.resource_type,
            i.logical_id,
            storage.dumps(storage.stamped(i.content, i.logical_id, 1, now)),
            i.rows,
        )
        for i in items
    ]
    bulkload.store_new(new_rows, now)
    # An import feeds a live directory: subscribers hear of each resource, in the same transaction.
    events.changed_many([events.Change(i.resource_type, i.logical_id, 1, "create") for i in items])


def _update(item: Prepared, log: _BatchLog) -> bool:
    """A new version of a stored id, as `PUT` with that id writes it (validated; its references
    and targetProfiles, and its referrers', are judged with its batch)."""
    try:
        with transaction.atomic(), storage.references_unchecked():
            storage.update(item.resource_type, item.logical_id, item.content)
    except FHIRError as exc:
        log.refuse(Refused(item.line, exc.issues(), item.key))
        return False
    except DatabaseError as exc:
        issue = {"severity": "error", "code": "exception", "diagnostics": _db_reason(exc)}
        log.refuse(Refused(item.line, [issue], item.key))
        return False
    log.stored(item)
    return True


def _db_reason(exc: DatabaseError) -> str:
    return f"The database refused the resource ({type(exc).__name__})"


def _note_references(stored: list[Prepared], log: _BatchLog) -> None:
    """Local references of the stored resources that name nothing stored yet (forward ones).

    The live targets stay locked FOR KEY SHARE until the batch commits: a delete's check for
    referrers cannot see this batch's uncommitted rows, so without the lock both could commit
    and leave references to a deleted resource that the end of the import would not report.
    Locked after the writes, in the same statement count as a plain look-up, so deletes wait
    only for the commit.
    """
    wanted: dict[tuple[str, str], list[int]] = {}
    for item in stored:
        for _, ref in item.rows.references:
            if not ref.external and ref.key != item.key:
                wanted.setdefault(ref.key, []).append(item.line)
    if not wanted:
        return
    for target in _missing(wanted, hold=True):
        for line in wanted[target]:
            log.note_unresolved(target, line)


def _missing(targets: Iterable[tuple[str, str]], *, hold: bool = False) -> set[tuple[str, str]]:
    """The targets that name no live resource, looked up a chunk at a time (in order, so that
    held locks are taken in one order by every batch)."""
    targets = sorted(targets)
    missing: set = set()
    for start in range(0, len(targets), LOOKUP_CHUNK):
        chunk = set(targets[start : start + LOOKUP_CHUNK])
        missing |= storage.missing_resources(chunk, hold=hold)
    return missing


# ---------------------------------------------------------------- files


def import_file(path: Path | str, errors: ErrorFile, **options: Any) -> Summary:
    """Import one NDJSON file (see `Importer` for the options)."""
    with open(path, "rb") as stream:
        return Importer(errors, **options).run(read_lines(stream, settings.FHIR_MAX_BODY_BYTES))
