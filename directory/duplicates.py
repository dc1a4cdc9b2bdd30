"""Possible duplicate Practitioners and Organizations, and merging one into another.

Candidates are pairs of resources of one type that share a contact point (a street address, a
phone or fax number, an email address or an endpoint) and whose names are alike. The pairs are
proposed by grouped queries on the search index tables (telecom tokens, address strings, endpoint
references), one per kind of contact point, so the records that share nothing are never read; the
stored sort names rule out most unlike pairs, and only the records left are read and compared as
before (contact points normalised, names by difflib's ratio).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import combinations

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet, Value, Window
from django.db.models.expressions import Combinable
from django.db.models.functions import Lower, Replace, Right

from . import storage
from .indexing import parse_reference
from .models import MergeRecord, ReferenceIndex, Resource, StringIndex, TokenIndex
from .normalize import fold
from .registry import RESOURCES

DUPLICATE_TYPES = ("Practitioner", "Organization")
# Names at least this alike (difflib ratio of the folded names), or, for people, the same family
# name and given initial.
NAME_THRESHOLD = 0.8
# Words that do not tell organizations apart.
ORG_NOISE = re.compile(r"\b(the|of|and|inc|llc|llp|pc|pa|ltd|corp|co)\b|[^\w\s]")
# Records read per query when scoring (under SQLite's bound on query parameters).
CHUNK = 500
SHARED_LABELS = {"address": "address", "phone": "phone", "email": "email", "endpoint": "endpoint"}


@dataclass(frozen=True)
class Candidate:
    logical_id: str
    name: str
    name_key: str
    family_initial: tuple[str, str] | None
    contacts: frozenset[tuple[str, str]]


@dataclass
class Pair:
    resource_type: str
    first: Candidate
    second: Candidate
    score: int
    shared: list[str] = field(default_factory=list)

    @property
    def choices(self) -> list[tuple[Candidate, Candidate]]:
        """(kept, merged) both ways round, for the page's two merge buttons."""
        return [(self.first, self.second), (self.second, self.first)]


def find_pairs(resource_type: str) -> list[Pair]:
    """Likely duplicates among live resources of `resource_type`, highest score first.

    A contact point shared by more than DUPLICATES_MAX_GROUP records (a hospital switchboard, a
    PO box) says nothing about any two of them and pairs none.
    """
    proposed = _proposed_pairs(resource_type)
    names = {pk: sort_name for kinds in proposed.values() for pk, sort_name in kinds[1]}
    alike = {
        key: kinds
        for key, (kinds, _) in proposed.items()
        if _names_may_match(resource_type, names[key[0]], names[key[1]])
    }
    candidates = _candidates(resource_type, {pk for key in alike for pk in key})
    pairs = []
    for (first, second), kinds in alike.items():
        a, b = candidates.get(first), candidates.get(second)
        if a is None or b is None:
            continue
        # Paired through a contact point that, compared exactly, they really share.
        if not kinds & {kind for kind, _ in a.contacts & b.contacts}:
            continue
        pair = _scored(resource_type, a, b)
        if pair is not None:
            pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, p.first.logical_id, p.second.logical_id))
    return pairs[: settings.DUPLICATES_MAX_PAIRS]


def _proposed_pairs(resource_type: str) -> dict:
    """{(pk, pk): ({kind, ...}, ((pk, sort_name), ...))} for records sharing an indexed contact
    value that at most DUPLICATES_MAX_GROUP records hold: one query per kind of contact,
    answered from the index tables, so records sharing nothing are never read."""
    proposed: dict = {}
    sources = [(kind, _members(rows)) for kind, rows in _contact_rows(resource_type)]
    if "telecom" not in RESOURCES[resource_type].params:
        sources += _scanned_telecom(resource_type)
    for kind, members in sources:
        groups: dict = {}
        for key, pk, sort_name in members:
            groups.setdefault(key, set()).add((pk, sort_name))
        for holders in groups.values():
            if len(holders) > settings.DUPLICATES_MAX_GROUP:
                continue
            for a, b in combinations(sorted(holders), 2):
                kinds, _ = proposed.setdefault((a[0], b[0]), (set(), (a, b)))
                kinds.add(kind)
    return proposed


def _scanned_telecom(resource_type: str) -> list:
    """Phone and email members read from every record, for a type (Organization) whose search
    parameters index no telecom: the one full read left, of the smaller type."""
    found: dict = {"phone": [], "email": []}
    live = Resource.objects.filter(resource_type=resource_type, deleted=False)
    rows = live.values_list("pk", "sort_name", "content").iterator(chunk_size=2000)
    for pk, sort_name, content in rows:
        for kind, value in _contacts(json.loads(content or "{}")):  # live rows: never NULL
            if kind in found:
                found[kind].append((value, pk, sort_name))
    return list(found.items())


def _contact_rows(resource_type: str) -> Iterator[tuple[str, QuerySet]]:
    """(kind, index rows annotated with a grouping `key`) for each kind of contact point the
    type's search parameters index. Phone numbers lose common punctuation and keep their last
    ten characters, as `_contacts` keeps their last ten digits."""
    params = RESOURCES[resource_type].params
    if "telecom" in params:
        telecom = TokenIndex.objects.filter(resource_type=resource_type, param="telecom")
        digits: Combinable = F("code")
        for mark in " ()-.+/":
            digits = Replace(digits, Value(mark), Value(""))
        phones = telecom.filter(system__in=("phone", "fax")).annotate(key=Right(digits, 10))
        yield "phone", phones
        yield "email", telecom.filter(system="email").annotate(key=Lower("code"))
    if "address" in params:
        addresses = StringIndex.objects.filter(resource_type=resource_type, param="address")
        yield "address", addresses.annotate(key=F("value"))
    if "endpoint" in params:
        endpoints = ReferenceIndex.objects.filter(
            resource_type=resource_type, param="endpoint", target_type="Endpoint", external=False
        )
        yield "endpoint", endpoints.annotate(key=F("target_id"))


def _members(rows: QuerySet) -> QuerySet:
    """(key, resource pk, sort name) for each key held by 2 to DUPLICATES_MAX_GROUP records.

    One pass over the kind's index rows with a window count per key (a join on a computed key
    with its grouped counts has the planner compare every row with every group)."""
    counted = rows.annotate(holders=Window(Count("resource_id"), partition_by=[F("key")]))
    return (
        counted.filter(holders__gte=2, holders__lte=settings.DUPLICATES_MAX_GROUP)
        .values_list("key", "resource_id", "resource__sort_name")
        .iterator(chunk_size=2000)
    )


def _names_may_match(resource_type: str, first: str, second: str) -> bool:
    """A cheap test on the stored sort names that every pair `_scored` accepts passes.

    A person's sort name is "family given..." folded: the same family and given initial means a
    common prefix reaching past a space; difflib's quick_ratio counts characters regardless of
    order, so it bounds the ratio of "given... family" too.
    """
    if resource_type == "Organization":
        first, second = (" ".join(ORG_NOISE.sub(" ", name).split()) for name in (first, second))
    else:
        common = _common_prefix(first, second)
        if " " in common and not common.endswith(" "):
            return True
    # difflib's real_quick_ratio and quick_ratio, without building a matcher per pair.
    total = len(first) + len(second)
    if not total or 2 * min(len(first), len(second)) < NAME_THRESHOLD * total:
        return False
    return 2 * (_letters(first) & _letters(second)).total() >= NAME_THRESHOLD * total


@lru_cache(maxsize=65536)
def _letters(name: str) -> Counter:
    return Counter(name)


def _common_prefix(first: str, second: str) -> str:
    size = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), None)
    return first[: min(len(first), len(second)) if size is None else size]


def _candidates(resource_type: str, pks: set[int]) -> dict[int, Candidate]:
    """The Candidates of these records only, read in chunks."""
    found = {}
    ordered = sorted(pks)
    for start in range(0, len(ordered), CHUNK):
        rows = Resource.objects.filter(pk__in=ordered[start : start + CHUNK], deleted=False)
        for pk, logical_id, content in rows.values_list("pk", "logical_id", "content"):
            found[pk] = _candidate(resource_type, logical_id, json.loads(content or "{}"))
    return found


def _scored(resource_type: str, a: Candidate, b: Candidate) -> Pair | None:
    same_person = a.family_initial is not None and a.family_initial == b.family_initial
    similarity = _similarity(a.name_key, b.name_key, same_person)
    if similarity < NAME_THRESHOLD and not same_person:
        return None
    kinds = sorted({kind for kind, _ in a.contacts & b.contacts})
    name_points = max(similarity, 0.9 if same_person else 0.0)
    score = min(100, round(60 * name_points) + 20 * len(kinds))
    first, second = sorted((a, b), key=lambda c: c.logical_id)
    return Pair(resource_type, first, second, score, [SHARED_LABELS[k] for k in kinds])


def _similarity(first: str, second: str, needed: bool) -> float:
    """difflib's ratio; unless `needed`, 0 when its cheap upper bounds already rule the pair out
    (most pairs sharing a contact point are colleagues, not duplicates)."""
    matcher = SequenceMatcher(None, first, second)
    if not needed and matcher.real_quick_ratio() < NAME_THRESHOLD:
        return 0.0
    if not needed and matcher.quick_ratio() < NAME_THRESHOLD:
        return 0.0
    return matcher.ratio()


def _candidate(resource_type: str, logical_id: str, content: dict) -> Candidate:
    if resource_type == "Practitioner":
        name = _person_name(content)
        family, given = _family_given(content)
        name_key = fold(f"{' '.join(given)} {family}")
        family_initial = (fold(family), fold(given[0])[:1]) if family and given else None
    else:
        name = content.get("name") or ""
        name_key = " ".join(ORG_NOISE.sub(" ", fold(name)).split())
        family_initial = None
    return Candidate(logical_id, name, name_key, family_initial, frozenset(_contacts(content)))


def _family_given(content: dict) -> tuple[str, list[str]]:
    for name in content.get("name") or []:
        family, given = name.get("family") or "", name.get("given") or []
        if family or given:
            return family, given
    return "", []


def _person_name(content: dict) -> str:
    family, given = _family_given(content)
    return " ".join([*given, family]).strip() or "(no name)"


def _contacts(content: dict) -> Iterator[tuple[str, str]]:
    """(kind, normalised value) for every address, phone, fax, email and endpoint."""
    for address in content.get("address") or []:
        lines = " ".join(address.get("line") or [])
        place = (address.get("postalCode") or "")[:5] or fold(address.get("city") or "")
        if lines.strip() and place:
            yield "address", f"{fold(lines)}|{place}"
    for telecom in content.get("telecom") or []:
        value = telecom.get("value") or ""
        if telecom.get("system") in ("phone", "fax"):
            digits = re.sub(r"\D", "", value)[-10:]
            if len(digits) >= 7:
                yield "phone", digits
        elif telecom.get("system") == "email" and "@" in value:
            yield "email", value.strip().lower()
    for endpoint in content.get("endpoint") or []:
        parsed = parse_reference(endpoint.get("reference") or "")
        if parsed is not None and not parsed.external:
            yield "endpoint", parsed.key[1]


# ---------------------------------------------------------------- merge


def merge(resource_type: str, keep_id: str, merged_id: str, *, actor: str) -> MergeRecord:
    """Point every reference to `merged_id` at `keep_id`, then delete `merged_id`.

    One transaction: each referrer gets a new version through storage (history and index rows
    stay right), the merged resource's deletion keeps its history, and a MergeRecord says who
    merged what. Any refusal on the way leaves nothing changed.
    """
    if resource_type not in DUPLICATE_TYPES:
        raise ValueError(f"{resource_type} records are not merged here")
    if keep_id == merged_id:
        raise ValueError("A record cannot be merged into itself")
    with transaction.atomic():
        storage.read(resource_type, keep_id)
        storage.read(resource_type, merged_id)
        rewritten = [
            f"{rtype}/{lid}"
            for rtype, lid in _referrers(resource_type, merged_id)
            if _rewrite(rtype, lid, (resource_type, merged_id), keep_id)
        ]
        storage.delete(resource_type, merged_id)
        return MergeRecord.objects.create(
            actor=actor,
            resource_type=resource_type,
            kept_id=keep_id,
            merged_id=merged_id,
            rewritten=rewritten,
        )


def _referrers(resource_type: str, logical_id: str) -> list[tuple[str, str]]:
    rows = ReferenceIndex.objects.pointing_at(resource_type, logical_id).referrers()
    return sorted(set(rows) - {(resource_type, logical_id)})


def _rewrite(rtype: str, logical_id: str, old: tuple[str, str], keep_id: str) -> bool:
    """Store a new version of one referrer with its references to `old` pointing at `keep_id`."""
    row = storage.read(rtype, logical_id)
    content = json.loads(row.live_content())
    if not _repoint(content, old, f"{old[0]}/{keep_id}"):
        return False
    storage.update(rtype, logical_id, content, if_match=str(row.version_id))
    return True


def _repoint(node: object, old: tuple[str, str], new_reference: str) -> bool:
    """Replace, in place, every local Reference to `old`; True when one was replaced."""
    changed = False
    if isinstance(node, list):
        for item in node:
            changed |= _repoint(item, old, new_reference)
    elif isinstance(node, dict):
        reference = node.get("reference")
        parsed = parse_reference(reference) if isinstance(reference, str) else None
        if parsed is not None and not parsed.external and (parsed.type, parsed.id) == old:
            node["reference"] = new_reference
            changed = True
        for item in node.values():
            if isinstance(item, dict | list):
                changed |= _repoint(item, old, new_reference)
    return changed
