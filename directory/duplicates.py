"""Possible duplicate Practitioners and Organizations, and merging one into another.

Candidates are pairs of resources of one type that share a contact point (a street address, a
phone or fax number, an email address or an endpoint) and whose names are alike. Grouping by
contact point first keeps the scan linear and portable (SQLite and PostgreSQL alike); names are
then compared pairwise within each small group with difflib's ratio.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import combinations

from django.conf import settings
from django.db import transaction

from . import storage
from .indexing import parse_reference
from .models import MergeRecord, ReferenceIndex, Resource
from .normalize import fold

DUPLICATE_TYPES = ("Practitioner", "Organization")
# Names at least this alike (difflib ratio of the folded names), or, for people, the same family
# name and given initial.
NAME_THRESHOLD = 0.8
# Words that do not tell organizations apart.
ORG_NOISE = re.compile(r"\b(the|of|and|inc|llc|llp|pc|pa|ltd|corp|co)\b|[^\w\s]")
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
    groups: dict[tuple[str, str], list[Candidate]] = {}
    live = Resource.objects.filter(resource_type=resource_type, deleted=False)
    for logical_id, content in live.values_list("logical_id", "content").iterator(chunk_size=2000):
        candidate = _candidate(resource_type, logical_id, json.loads(content))
        for contact in candidate.contacts:
            groups.setdefault(contact, []).append(candidate)
    seen: set[tuple[str, str]] = set()
    pairs = []
    for members in groups.values():
        if len(members) > settings.DUPLICATES_MAX_GROUP:
            continue
        for a, b in combinations(members, 2):
            key = tuple(sorted((a.logical_id, b.logical_id)))
            if key in seen:
                continue
            seen.add(key)
            pair = _scored(resource_type, a, b)
            if pair is not None:
                pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, p.first.logical_id, p.second.logical_id))
    return pairs[: settings.DUPLICATES_MAX_PAIRS]


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


def _contacts(content: dict):
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
            yield "endpoint", parsed.id


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
    rows = ReferenceIndex.objects.filter(
        target_type=resource_type, target_id=logical_id, external=False
    ).values_list("resource_type", "resource__logical_id")
    return sorted(set(rows) - {(resource_type, logical_id)})


def _rewrite(rtype: str, logical_id: str, old: tuple[str, str], keep_id: str) -> bool:
    """Store a new version of one referrer with its references to `old` pointing at `keep_id`."""
    row = storage.read(rtype, logical_id)
    content = json.loads(row.content)
    if not _repoint(content, old, f"{old[0]}/{keep_id}"):
        return False
    storage.update(rtype, logical_id, content, if_match=storage.etag(row.version_id))
    return True


def _repoint(node, old: tuple[str, str], new_reference: str) -> bool:
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
