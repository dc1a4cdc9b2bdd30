"""Re-extract the search index of stored resources, after search parameters changed.

An install upgraded to a version with new or changed SearchParameters (new index kinds, a
custom parameter) has index rows written under the old definitions; this rebuilds them from
each resource's current content. Batches are locked and rewritten one transaction each, so
searches and writes go on meanwhile and an interrupted run can simply be started again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction

from . import indexing, storage
from .errors import FHIRError
from .models import Resource
from .registry import RESOURCE_TYPES


@dataclass
class Progress:
    resource_type: str
    done: int
    total: int
    failed: list[str] = field(default_factory=list)  # `Type/id` of resources left as they were


def reindex(
    resource_type: str | None = None,
    *,
    batch_size: int = 500,
    report: Callable[[Progress], None] | None = None,
) -> list[Progress]:
    """Rebuild the index rows and sort keys of every live resource (of one type, or all)."""
    if resource_type is not None and resource_type not in RESOURCE_TYPES:
        raise ValueError(f"Unknown resource type '{resource_type}'")
    results = []
    for rtype in [resource_type] if resource_type else RESOURCE_TYPES:
        live = Resource.objects.filter(resource_type=rtype, deleted=False)
        progress = Progress(rtype, 0, live.count())
        last_pk = 0
        while True:
            pks = list(
                live.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size]
            )
            if not pks:
                break
            progress.done += _reindex_batch(pks, progress.failed)
            last_pk = pks[-1]
            if report is not None:
                report(progress)
        results.append(progress)
    return results


def _reindex_batch(pks: list[int], failed: list[str]) -> int:
    with transaction.atomic():
        rows = list(Resource.objects.select_for_update().filter(pk__in=pks, deleted=False))
        items = []
        for row in rows:
            try:
                items.append((row, indexing.extract(row.resource_type, json.loads(row.content))))
            except (FHIRError, ValueError):
                failed.append(f"{row.resource_type}/{row.logical_id}")
        storage.replace_index_rows(items)
        changed = [row for row, extracted in items if row.sort_name != extracted.sort_name]
        for row, extracted in items:
            row.sort_name = extracted.sort_name
        Resource.objects.bulk_update(changed, ["sort_name"], batch_size=500)
    return len(rows)
