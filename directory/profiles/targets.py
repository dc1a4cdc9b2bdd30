"""targetProfile conformance: a referenced resource must conform to the profile its referrer's
profile requires of it.

Plan-Net and NDH profiles constrain References by profile, not only by type
(plannet-PractitionerRole.practitioner -> plannet-Practitioner). When a resource claims such a
profile, each literal reference the profile constrains must point at a resource that conforms to
at least one of the element's target profiles of its type: the stored resource (read here) or a
contained one. A reference to a resource that is not stored is the existence check's to refuse
(directory/storage.py), an absolute URL is another server's, and an element that also allows the
core profile of the type (or a profile not known here) allows any resource of the type.

`judge` takes many referrers at once, as the bulk import judges a written batch: the targets'
versions in one query per type, their contents (those without a cached verdict) in another.

Verdicts on stored targets are cached per process in a bounded LRU keyed by (type, id, version,
lastUpdated, profile): a stored version never changes, so a Bundle of a hundred roles naming one
Organization validates it once. lastUpdated is in the key because a rolled-back write can leave
its version number to a later, different write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, connections, router

from common.lru import BoundedLRU

from ..errors import UnprocessableReference
from ..models import Resource
from ..references import parse
from .definitions import CORE_PROFILE, Element, profile_type
from .validator import claimed_profiles, known, profile_references, validate_profile

CACHE_SIZE = 4096
# Target ids read per query (SQLite caps the parameters of one statement).
READ_CHUNK = 5000

VerdictKey = tuple[str, str, int, datetime, str]


class _Verdicts(BoundedLRU[VerdictKey, bool]):
    """Target verdicts (True: conforms), the least recently used evicted past `size`."""


VERDICTS = _Verdicts(CACHE_SIZE)


@dataclass(frozen=True)
class Claim:
    """One reference the referrer's profile constrains, and the profiles its target may meet."""

    element: Element
    expression: str
    type: str
    id: str
    contained: bool
    profiles: tuple[str, ...]


def check(resource: dict, *, referrer: str = "") -> None:
    """Raise a 422 naming the element and the profiles unless every constrained target conforms.

    `referrer` ("PractitionerRole/1: ") prefixes the diagnostics when several resources were
    written together (a transaction) and the client must learn which one failed.
    """
    issues = target_issues(resource)
    if issues:
        if referrer:
            issues = [{**i, "diagnostics": f"{referrer}: {i['diagnostics']}"} for i in issues]
        raise UnprocessableReference(issues[0]["diagnostics"], issues=issues)


def target_issues(resource: dict) -> list[dict]:
    """One issue per constrained reference whose target conforms to none of its profiles."""
    return judge([(resource, claims(resource))])[0].issues


@dataclass
class Judged:
    """One referrer's verdict: an issue per failing claim, and the claims whose target is not
    stored (the existence check refuses those; the bulk import judges them at its end)."""

    issues: list[dict]
    unstored: list[Claim]


def judge(
    referrers: list[tuple[dict, list[Claim]]],
    validated: Mapping[tuple[str, str], frozenset[str]] | None = None,
) -> list[Judged]:
    """Judge the claims of many referrers together: one query per target type for the stored
    versions and one for the contents with no cached verdict, whatever their number.

    `validated` names stored targets known to conform to some profiles (their `claimed_known`,
    written by the caller after validating them): those are not read nor judged again.
    """
    if validated:
        referrers = [
            (resource, [c for c in found if not _validated(c, validated)])
            for resource, found in referrers
        ]
    wanted = {(c.type, c.id) for _, found in referrers for c in found if not c.contained}
    stored = _stored_versions(wanted) if wanted else {}
    needed = {
        key
        for _, found in referrers
        for c in found
        if (key := (c.type, c.id)) in stored and not c.contained and _unsettled(c, stored[key])
    }
    contents = stored_contents(needed) if needed else {}
    judged = []
    for resource, found in referrers:
        result = Judged([], [])
        for claim in found:
            if claim.contained:
                ok = _contained_conforms(resource, claim)
            elif (claim.type, claim.id) in stored:
                ok = _stored_conforms(claim, stored[claim.type, claim.id], contents)
            else:
                result.unstored.append(claim)
                continue
            if not ok:
                result.issues.append(_issue(claim))
        judged.append(result)
    return judged


def _validated(claim: Claim, validated: Mapping[tuple[str, str], frozenset[str]]) -> bool:
    if claim.contained:
        return False  # a contained id is local to its container, not a stored resource's
    return not validated.get((claim.type, claim.id), frozenset()).isdisjoint(claim.profiles)


def claimed_known(resource: dict) -> frozenset[str]:
    """The known profiles `resource` claims: validation held it to each of them (with the same
    validate_profile), so once stored it conforms to them."""
    urls = (claimed.split("|")[0] for claimed in claimed_profiles(resource))
    return frozenset(url for url in urls if known(url))


def claims(resource: dict) -> list[Claim]:
    """The references `resource`'s claimed profiles constrain to target profiles."""
    claims = []
    for claimed in claimed_profiles(resource):
        url = claimed.split("|")[0]
        if not known(url):
            continue
        for element, expression, reference in profile_references(resource, url):
            claim = _claim(resource, element, expression, reference)
            if claim is not None:
                claims.append(claim)
    return claims


def _claim(resource: dict, element: Element, expression: str, text: str) -> Claim | None:
    parsed = parse(text)
    if parsed is None or not (parsed.is_local or parsed.kind == "relative"):
        return None  # absolute (another server's), temporary or conditional: nothing stored
    if parsed.is_local:
        target = _contained(resource, parsed.id)
        rtype = target.get("resourceType") if target is not None else None
        rid = parsed.id or ""
    else:
        rtype, rid = parsed.key
    if not isinstance(rtype, str):
        return None  # `#` (the container) or a missing contained resource: ref-1 judges those
    profiles = profiles_for(element, rtype)
    if not profiles:
        return None
    return Claim(element, expression, rtype, rid, parsed.is_local, profiles)


def profiles_for(element: Element, rtype: str) -> tuple[str, ...]:
    """The element's target profiles of `rtype` to check; () if any resource of it will do."""
    urls = [u.split("|")[0] for u in element.target_profiles if profile_type(u) == rtype]
    if any(not known(u) or u.startswith(CORE_PROFILE) for u in urls):
        return ()  # the core profile of the type, or one not vendored: not judged here
    return tuple(urls)


def _contained(resource: dict, local_id: str | None) -> dict | None:
    contained = resource.get("contained")
    for item in contained if isinstance(contained, list) else []:
        if isinstance(item, dict) and local_id and item.get("id") == local_id:
            return item
    return None


def _contained_conforms(resource: dict, claim: Claim) -> bool:
    target = _contained(resource, claim.id) or {}
    # A contained resource carries no meta of its own (R4 forbids versionId/lastUpdated on it):
    # it is judged with its container's, as a profile requiring meta.lastUpdated (NDH) reads it.
    meta = resource.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    own = target.get("meta")
    stamps = {k: meta[k] for k in ("versionId", "lastUpdated") if k in meta}
    target = {**target, "meta": {**stamps, **(own if isinstance(own, dict) else {})}}
    return any(not validate_profile(target, url) for url in claim.profiles)


def _stored_versions(keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, datetime]]:
    """(version, lastUpdated) of each live stored target, in one query per type (and chunk);
    on PostgreSQL the targets stay locked FOR SHARE until the transaction ends (see _held)."""
    held = connection.vendor == "postgresql"
    found = {}
    for rtype, ids in _by_type(keys).items():
        for start in range(0, len(ids), READ_CHUNK):
            chunk = ids[start : start + READ_CHUNK]
            rows = (
                _held(rtype, chunk)
                if held
                else Resource.objects.filter(
                    resource_type=rtype, logical_id__in=chunk, deleted=False
                ).values_list("logical_id", "version_id", "last_updated")
            )
            for rid, version, moment in rows:
                found[rtype, rid] = (version, moment)
    return found


def _held(rtype: str, ids: list[str]) -> list[tuple[str, int, datetime]]:
    """The live targets among `ids`, locked FOR SHARE: the lock an update (FOR NO KEY UPDATE)
    waits for. The existence check's FOR KEY SHARE keeps out only a delete; without this, an
    update making a target non-conforming could commit beside the write judging it, its
    referrer check (referrers.py) blind to that write's uncommitted references. Whichever locks
    first wins: the update waits and then sees the new referrer (409), or this waits for the
    update and reads its committed version (READ COMMITTED re-reads a row it waited for; the
    contents are read by a later statement), so the verdict is on what is stored."""
    alias = router.db_for_write(Resource)
    table = connections[alias].ops.quote_name(Resource._meta.db_table)
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT logical_id, version_id, last_updated "  # noqa: S608
            f"FROM {table} WHERE resource_type = %s AND logical_id = ANY(%s) AND NOT deleted "
            "ORDER BY id FOR SHARE",
            [rtype, ids],
        )
        return cursor.fetchall()


def _by_type(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    by_type: dict[str, set[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, set()).add(rid)
    return {rtype: sorted(ids) for rtype, ids in by_type.items()}


def _unsettled(claim: Claim, version: tuple[int, datetime]) -> bool:
    """No cached verdict says the target conforms, and one is missing: its content is needed."""
    verdicts = [VERDICTS.get((claim.type, claim.id, *version, url)) for url in claim.profiles]
    return not any(verdicts) and None in verdicts


def stored_contents(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The contents of the live resources among `keys`, a chunk of ids of one type per query."""
    found = {}
    for rtype, ids in _by_type(keys).items():
        for start in range(0, len(ids), READ_CHUNK):
            rows = Resource.objects.filter(
                resource_type=rtype, logical_id__in=ids[start : start + READ_CHUNK], deleted=False
            ).only("resource_type", "logical_id", "content")
            for row in rows:
                found[rtype, row.logical_id] = json.loads(row.live_content())
    return found


def _stored_conforms(
    claim: Claim, version: tuple[int, datetime], contents: dict[tuple[str, str], dict]
) -> bool:
    keys = [(claim.type, claim.id, *version, url) for url in claim.profiles]
    verdicts = [VERDICTS.get(key) for key in keys]
    if any(verdicts):
        return True
    content = contents.get((claim.type, claim.id))
    for key, verdict in zip(keys, verdicts, strict=True):
        if verdict is None:
            if content is None:  # its verdict was evicted since the contents were read
                content = _stored_content(claim)
            verdict = not validate_profile(content, key[-1])
            VERDICTS.put(key, verdict)
            if verdict:
                return True
    return False


def _stored_content(claim: Claim) -> dict:
    row = Resource.objects.only("content").get(resource_type=claim.type, logical_id=claim.id)
    return json.loads(row.live_content())


def _issue(claim: Claim) -> dict:
    """Names the element and the profiles; not the target's own failures (its content is not
    the referrer's to learn)."""
    names = " or ".join(claim.profiles)
    where = "contained " if claim.contained else ""
    message = (
        f"the referenced {where}{claim.type} does not conform to {names}, which "
        f"{claim.element.path} requires"
    )
    return {
        "severity": "error",
        "code": "processing",
        "details": {"text": claim.element.id},
        "diagnostics": f"{claim.expression}: {message}",
        "expression": [claim.expression],
    }
