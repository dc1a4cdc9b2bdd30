"""Writes stored together: the creates and updates of one transaction Bundle in a few statements.

`storage.create` and `storage.update` store one resource at a time: its lock and checks, then
(on PostgreSQL) one statement for its rows (onestatement.py). A WriteBatch takes the prepared
writes of a whole transaction and stores them together: one `SELECT ... FOR UPDATE` for every id
it updates, the unique-identifier rule judged in one query on the state the writes leave, new
resource rows, every version and every index table through bulkload's COPY (bulk INSERTs off
PostgreSQL), the updated rows as one bulk UPDATE. The checks are those of the one-by-one path;
two rules follow from storing together: every write shares one `meta.lastUpdated`, and unique
identifiers are judged on the final state (two writes claiming one NPI are refused, a write that
drops an identifier frees it for another).

The caller holds the transaction: a failure leaves nothing written once it rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from . import bulkload, customparams, events, identifiers, indexing, storage
from .errors import FHIRError
from .formats import expected_version
from .models import Resource
from .validation import validate_resource

Key = tuple[str, str]  # (type, logical id)


class EntryFailed(Exception):
    """A check that only the whole batch can make failed for one write (`label` names it)."""

    def __init__(self, label: Any, error: FHIRError) -> None:
        super().__init__(error.diagnostics)
        self.label = label
        self.error = error


@dataclass
class _Write:
    label: Any  # the caller's name for this write in errors (a Bundle entry's index)
    resource_type: str
    logical_id: str
    method: str
    current: Resource | None  # the locked row; None for an id never stored
    content: dict[str, Any]
    rows: indexing.IndexRows
    text: str  # the stamped JSON stored
    version_id: int
    # A new or deleted id: a create for listeners and the response (fixed before flush
    # overwrites `current` with the new version).
    created: bool


class WriteBatch:
    """Creates and updates prepared one by one (every check that needs only the write itself),
    stored by `flush`."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or timezone.now()
        self._writes: list[_Write] = []
        self._locked: dict[Key, Resource | None] = {}
        customparams.ensure_fresh()  # extract with the custom parameters other workers stored

    def lock(self, keys: Iterable[Key]) -> None:
        """Lock the rows of these ids, all in one statement (ids not stored lock nothing)."""
        wanted = set(keys) - set(self._locked)
        if not wanted:
            return
        by_type: dict[str, set[str]] = {}
        for resource_type, logical_id in wanted:
            by_type.setdefault(resource_type, set()).add(logical_id)
        condition = Q()
        for resource_type, ids in by_type.items():
            condition |= Q(resource_type=resource_type, logical_id__in=ids)
        # In primary key order, so two batches locking shared rows wait rather than deadlock;
        # no key changes, so referrers' FOR KEY SHARE need not wait (storage._lock_current).
        rows = Resource.objects.select_for_update(no_key=True).filter(condition).order_by("pk")
        for row in rows:
            self._locked[(row.resource_type, row.logical_id)] = row
        for key in wanted:
            self._locked.setdefault(key, None)

    def create(self, label: Any, resource_type: str, logical_id: str, content: dict) -> None:
        """A create with an id the server assigned (storage.create's checks)."""
        canonical = validate_resource(resource_type, content)
        self._add(label, resource_type, logical_id, canonical, "POST", None)

    def update(
        self,
        label: Any,
        resource_type: str,
        logical_id: str,
        content: dict,
        *,
        if_match: str | None = None,
        before_create: Callable[[], None] | None = None,
    ) -> None:
        """An update, or a create with the client's id (storage.update's checks)."""
        canonical = storage.validated_update(resource_type, logical_id, content)
        expected = expected_version(if_match) if if_match is not None else None
        self.lock([(resource_type, logical_id)])
        current = self._locked[(resource_type, logical_id)]
        storage.check_version(resource_type, logical_id, current, expected)
        if (current is None or current.deleted) and before_create is not None:
            before_create()
        self._add(label, resource_type, logical_id, canonical, "PUT", current)

    def _add(
        self,
        label: Any,
        resource_type: str,
        logical_id: str,
        canonical: dict,
        method: str,
        current: Resource | None,
    ) -> None:
        customparams.before_store(resource_type, logical_id, canonical)
        rows = indexing.extract(resource_type, canonical)
        version_id = current.version_id + 1 if current is not None else 1
        text = storage.dumps(storage.stamped(canonical, logical_id, version_id, self.now))
        self._writes.append(
            _Write(
                label,
                resource_type,
                logical_id,
                method,
                current,
                canonical,
                rows,
                text,
                version_id,
                created=current is None or current.deleted,
            )
        )

    def flush(self) -> list[tuple[Resource, bool]]:
        """Store every write; (row, created) for each, in the order they were added.

        Raises EntryFailed for a write the unique-identifier rule refuses, and the database's
        IntegrityError when a concurrent transaction created one of the new ids first.
        """
        writes, self._writes = self._writes, []
        if not writes:
            return []
        self._check_identifiers(writes)
        rows = self._store_resource_rows(writes)
        pks = [row.pk for row in rows]
        bulkload.store_versions(
            [
                bulkload.Written(
                    pk, w.resource_type, w.logical_id, w.version_id, w.method, w.text, w.rows
                )
                for w, pk in zip(writes, pks, strict=True)
            ],
            self.now,
        )
        self._check_references(writes, pks)
        # After the index rows: a subscription's filter is judged on the state stored.
        events.changed_many(
            [
                events.Change(
                    w.resource_type, w.logical_id, w.version_id, "create" if w.created else "update"
                )
                for w in writes
            ]
        )
        return [(row, w.created) for row, w in zip(rows, writes, strict=True)]

    def _store_resource_rows(self, writes: list[_Write]) -> list[Resource]:
        """The resource rows: new ones inserted, stored ones updated (their old index rows
        gone); the rows in the order of `writes`."""
        new = [w for w in writes if w.current is None]
        pks = iter(
            bulkload.insert_resources(
                [(w.resource_type, w.logical_id, w.text, w.rows) for w in new], self.now
            )
            if new
            else []
        )
        rows = [
            self._new_row(w, next(pks)) if w.current is None else self._updated_row(w, w.current)
            for w in writes
        ]
        changed = [row for row, w in zip(rows, writes, strict=True) if w.current is not None]
        if changed:
            fields = ["version_id", "last_updated", "deleted", "content", "sort_name"]
            Resource.objects.bulk_update(changed, fields)
            indexing.delete_rows([row.pk for row in changed])
        return rows

    def _check_identifiers(self, writes: list[_Write]) -> None:
        replaced = {w.current.pk for w in writes if w.current is not None}
        items = [(w.resource_type, w.logical_id, w.content) for w in writes]
        refused = identifiers.final_state_conflict(items, replaced)
        if refused is not None:
            position, error = refused
            raise EntryFailed(writes[position].label, error)

    def _check_references(self, writes: list[_Write], pks: list[int]) -> None:
        if storage.written_together(pks):
            return  # the caller's deferred_integrity checks them all at its end
        ours = {(w.resource_type, w.logical_id) for w in writes}
        local = {ref.key for w in writes for _, ref in w.rows.references if not ref.external}
        storage.refuse_missing(local - ours)

    def _new_row(self, write: _Write, pk: int) -> Resource:
        row = Resource(
            pk=pk,
            resource_type=write.resource_type,
            logical_id=write.logical_id,
            version_id=1,
            last_updated=self.now,
            deleted=False,
            content=write.text,
            sort_name=write.rows.sort_name,
        )
        row._state.adding = False  # stored: a later save() updates it
        return row

    def _updated_row(self, write: _Write, row: Resource) -> Resource:
        row.version_id = write.version_id
        row.last_updated = self.now
        row.deleted = False
        row.content = write.text
        row.sort_name = write.rows.sort_name
        return row
