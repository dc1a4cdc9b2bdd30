"""Load directory resources from FHIR Bundle files, in reference order, all or nothing."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from directory import bulkload, statistics, storage
from directory.errors import FHIRError
from directory.indexing import parse_reference
from directory.models import Resource
from directory.registry import RESOURCE_TYPES
from directory.statement_timeout import lift_statement_timeout
from directory.validation import validate_resource

DEFAULT_PATH = Path(settings.BASE_DIR) / "fixtures" / "sample-directory.json"

# Only a tie-breaker for readability; the real order comes from the references.
TYPE_PRIORITY = {
    t: i
    for i, t in enumerate(
        [
            "Endpoint",
            "Organization",
            "Location",
            "HealthcareService",
            "InsurancePlan",
            "OrganizationAffiliation",
            "Practitioner",
            "PractitionerRole",
            "Group",
        ]
    )
}

Key = tuple[str, str]


class Command(BaseCommand):
    help = "Load FHIR Bundle files (default: the sample directory) in dependency order."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="*", help=f"Bundle JSON files (default {DEFAULT_PATH})")
        parser.add_argument(
            "--skip-existing",
            action="store_true",
            help="Leave resources whose type/id already exist alone instead of refusing",
        )
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(
        self,
        *args: Any,
        paths: list[str | Path],
        skip_existing: bool,
        batch_size: int,
        **options: Any,
    ) -> None:
        lift_statement_timeout()  # bulk work outlasts the per-request statement timeout
        resources = {}
        for path in paths or [DEFAULT_PATH]:
            for key, content in read_bundle(Path(path)):
                if key in resources:
                    raise CommandError(f"{key[0]}/{key[1]} appears more than once in the input")
                resources[key] = content
        existing = existing_keys(resources)
        if existing and not skip_existing:
            raise CommandError(
                f"{len(existing)} resource(s) already exist, e.g. {describe(existing)}; "
                "nothing was loaded (use --skip-existing to load only the new ones)"
            )
        for key in existing:
            del resources[key]
        counts = load(resources, batch_size)
        statistics.refresh_after_load(sum(counts.values()))
        self.report(counts, existing)

    def report(self, counts: Counter, skipped: set[Key]) -> None:
        parts = ", ".join(f"{t} {n}" for t, n in sorted(counts.items(), key=type_rank))
        self.stdout.write(f"Loaded {sum(counts.values())} resources: {parts or 'none'}")
        if skipped:
            by_type = Counter(t for t, _ in skipped)
            parts = ", ".join(f"{t} {n}" for t, n in sorted(by_type.items(), key=type_rank))
            self.stdout.write(f"Skipped {len(skipped)} existing resources: {parts}")


def type_rank(item: tuple[str, int]) -> tuple[int, str]:
    return TYPE_PRIORITY.get(item[0], len(TYPE_PRIORITY)), item[0]


def describe(keys: Iterable[Key]) -> str:
    return ", ".join(f"{t}/{i}" for t, i in sorted(keys)[:5])


# ---------------------------------------------------------------- reading


def read_bundle(path: Path) -> Iterator[tuple[Key, dict]]:
    """Yield ((type, id), validated content) for every entry of a Bundle file."""
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CommandError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise CommandError(f"{path} is not a FHIR Bundle")
    for index, entry in enumerate(bundle.get("entry") or []):
        content = entry.get("resource") if isinstance(entry, dict) else None
        where = f"{path.name} entry[{index}]"
        if not isinstance(content, dict):
            raise CommandError(f"{where} has no resource")
        yield checked(content, where)


def checked(content: dict, where: str) -> tuple[Key, dict]:
    """Validate up front so an error can name the entry; bulk_load would only name the field."""
    rtype = content.get("resourceType")
    if rtype not in RESOURCE_TYPES:
        raise CommandError(f"{where}: resource type {rtype!r} is not supported")
    content = {**content, "id": content.get("id") or storage.new_id()}
    try:
        storage.check_id(content["id"])
        validate_resource(rtype, content)
    except FHIRError as exc:
        raise CommandError(f"{where} ({rtype}/{content['id']}): {exc.diagnostics}") from None
    return (rtype, content["id"]), content


def existing_keys(resources: dict[Key, dict]) -> set[Key]:
    """Input keys already stored, deleted ones included (their ids stay taken)."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in resources:
        by_type.setdefault(rtype, []).append(rid)
    found: set[Key] = set()
    for rtype, ids in by_type.items():
        for start in range(0, len(ids), 5000):
            rows = Resource.objects.filter(
                resource_type=rtype, logical_id__in=ids[start : start + 5000]
            ).values_list("logical_id", flat=True)
            found.update((rtype, rid) for rid in rows)
    return found


# ---------------------------------------------------------------- ordering


def local_references(node: object) -> set[Key]:
    """Every relative `Type/id` reference anywhere in a resource."""
    found = set()
    if isinstance(node, dict):
        value = node.get("reference")
        if isinstance(value, str):
            parsed = parse_reference(value)
            if parsed and not parsed.external:
                found.add(parsed.key)
        for child in node.values():
            if isinstance(child, dict | list):
                found |= local_references(child)
    elif isinstance(node, list):
        for child in node:
            found |= local_references(child)
    return found


def dependency_groups(resources: dict[Key, dict]) -> list[list[Key]]:
    """Groups of keys, each group's dependencies in earlier groups or itself.

    A group is a strongly connected component: resources that reference each other in a cycle
    (an Organization listing its Endpoint, which names the Organization as its manager) must be
    stored in the same bulk_load batch, where forward references are allowed.
    """
    deps = {
        key: sorted((local_references(content) & resources.keys()) - {key}, key=sort_key)
        for key, content in resources.items()
    }
    return strongly_connected(sorted(resources, key=sort_key), deps)


def sort_key(key: Key) -> tuple[int, Key]:
    return TYPE_PRIORITY.get(key[0], len(TYPE_PRIORITY)), key


def strongly_connected(nodes: list[Key], deps: dict[Key, list[Key]]) -> list[list[Key]]:
    """Tarjan's algorithm, iterative; components come out dependencies-first."""
    index_of: dict[Key, int] = {}
    low: dict[Key, int] = {}
    on_stack: set[Key] = set()
    stack: list[Key] = []
    groups: list[list[Key]] = []
    for root in nodes:
        if root in index_of:
            continue
        work = [(root, iter(deps[root]))]
        index_of[root] = low[root] = len(index_of)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index_of[node]:
                    groups.append(pop_component(stack, on_stack, node))
            elif child not in index_of:
                index_of[child] = low[child] = len(index_of)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(deps[child])))
            elif child in on_stack:
                low[node] = min(low[node], index_of[child])
    return groups


def pop_component(stack: list[Key], on_stack: set[Key], root: Key) -> list[Key]:
    component = []
    while True:
        key = stack.pop()
        on_stack.discard(key)
        component.append(key)
        if key == root:
            return sorted(component, key=sort_key)


def batches(groups: list[list[Key]], batch_size: int) -> Iterator[list[Key]]:
    """Pack whole groups into batches of about `batch_size`; a group is never split."""
    batch: list[Key] = []
    for group in groups:
        if batch and len(batch) + len(group) > batch_size:
            yield batch
            batch = []
        batch.extend(group)
    if batch:
        yield batch


# ---------------------------------------------------------------- loading


def load(resources: dict[Key, dict], batch_size: int) -> Counter:
    """Store everything in one transaction: any failure leaves the database untouched."""
    groups = dependency_groups(resources)
    counts: Counter = Counter()
    try:
        with transaction.atomic():
            for keys in batches(groups, max(batch_size, 1)):
                items = [(rtype, resources[(rtype, rid)]) for rtype, rid in keys]
                bulkload.bulk_load(items, batch_size=len(items))
                counts.update(rtype for rtype, _ in keys)
    except FHIRError as exc:
        raise CommandError(f"{exc.diagnostics}; nothing was loaded") from None
    except IntegrityError as exc:
        raise CommandError(f"Database refused the load ({exc}); nothing was loaded") from None
    return counts
