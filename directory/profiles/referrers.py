"""targetProfile conformance kept when the target changes: an update is refused (409) when it
makes a resource stop conforming to a profile that a stored referrer requires of it.

`targets.py` judges a referrer when it is written; without this, a later update of the target
could silently make that referrer non-conforming (plannet-PractitionerRole.location requires a
plannet-Location: an update dropping what plannet-Location needs would break every such role).
As with a delete while referenced, the client is told which referrers stand in the way.

Only a loss counts: a referrer is named when the target's previous version conformed to one of
the profiles the referrer's element allows and the new version conforms to none. A referrer
already pointing at a non-conforming target (stored by `generatedirectory
--no-reference-check`, which does not judge targets, or by an import that warned of it) does
not block an unrelated update.

The cost on an update is one query (the profiles the live referrers claim, from their `_profile`
index rows) unless a referrer claims a profile that constrains references to this type; then
the previous and the new version are judged against the profiles required of it (the verdicts
cached as targets.py caches them) and, only when one is lost, the referrers read.
"""

from __future__ import annotations

import json
from functools import cache

from django.db.models import Q, QuerySet

from ..errors import Conflict
from ..models import ReferenceIndex, Resource, ResourceVersion, UriIndex
from .definitions import definitions
from .targets import VERDICTS, claims, profiles_for
from .validator import known, validate_profile

# Referrers named in the refusal, as a delete while referenced names them.
NAMED = 5


def check_referrers(row: Resource) -> None:
    """Raise a 409 when this write of `row` (an update) breaks a referrer's target profile."""
    if row.version_id < 2 or row.deleted:
        return
    claimed = _claimed_by_referrers(row.resource_type, row.logical_id)
    required = frozenset().union(*(_required_of(url, row.resource_type) for url in claimed))
    if not required:
        return
    previous = _previous(row)
    if previous is None:
        return
    # Only profiles the previous version met can be lost; the new one is judged on those alone.
    lost = {p for p in required if _conforms(previous, p) and not _conforms(row, p)}
    if not lost:
        return
    broken = _broken(row, claimed, lost)
    if broken:
        raise Conflict(broken[0]["diagnostics"], issues=broken)


def _claimed_by_referrers(rtype: str, rid: str) -> set[str]:
    """The profiles (canonical, without version) the resources referring to this one claim."""
    values = (
        UriIndex.objects.filter(param="_profile", resource_id__in=_referrers(rtype, rid))
        .values_list("value", flat=True)
        .distinct()
    )
    return {value.split("|")[0] for value in values if known(value.split("|")[0])}


def _referrers(rtype: str, rid: str) -> QuerySet:
    """The ids of the resources whose local references name this one (a subquery)."""
    return ReferenceIndex.objects.pointing_at(rtype, rid).values("resource_id")


@cache
def _required_of(url: str, rtype: str) -> frozenset[str]:
    """Every profile an element of profile `url` (or of an extension it uses) may require of a
    `rtype` target; the definitions are loaded once per process, so this is cached with them."""
    found: set[str] = set()
    seen: set[str] = set()
    pending = [url]
    while pending:
        current = definitions().get(pending.pop())
        if current is None or current.url in seen:
            continue
        seen.add(current.url)
        for element in current.by_id.values():
            found.update(profiles_for(element, rtype))
            pending.extend(p.split("|")[0] for p in element.type_profiles)
    return frozenset(found)


def _previous(row: Resource) -> ResourceVersion | None:
    """The version this write replaced, if it was live (a revived resource had no referrers)."""
    found = ResourceVersion.objects.filter(resource_id=row.pk, version_id=row.version_id - 1)
    version = found.only("version_id", "last_updated", "content").first()
    return version if version is not None and version.content is not None else None


def _conforms(version: Resource | ResourceVersion, url: str) -> bool:
    key = (version.resource_type, version.logical_id, version.version_id, version.last_updated, url)
    verdict = VERDICTS.get(key)
    if verdict is None:
        verdict = not validate_profile(json.loads(version.live_content()), url)
        VERDICTS.put(key, verdict)
    return verdict


def _broken(row: Resource, claimed: set[str], lost: set[str]) -> list[dict]:
    """Issues naming the referrers whose constrained reference to `row` this write breaks."""
    relevant = [url for url in claimed if _required_of(url, row.resource_type) & lost]
    referrers = _referrers(row.resource_type, row.logical_id)
    # A claim may carry a version (`url|1.2.0`); the index keeps the value as claimed.
    claimed_as = Q(value__in=relevant)
    for url in relevant:
        claimed_as |= Q(value__startswith=f"{url}|")
    claiming = UriIndex.objects.filter(claimed_as, param="_profile").values("resource_id")
    rows = Resource.objects.filter(pk__in=referrers, deleted=False).filter(pk__in=claiming)
    issues: list[dict] = []
    for rtype, rid, content in (
        rows.order_by("pk")
        .values_list("resource_type", "logical_id", "content")
        .iterator(chunk_size=200)
    ):
        issue = _broken_claim(row, f"{rtype}/{rid}", json.loads(content or "{}"), lost)
        if issue is not None:
            issues.append(issue)
            if len(issues) == NAMED:
                break
    return issues


def _broken_claim(row: Resource, referrer: str, content: dict, lost: set[str]) -> dict | None:
    for claim in claims(content):
        if claim.contained or (claim.type, claim.id) != (row.resource_type, row.logical_id):
            continue
        # Broken: it relied on a lost profile, and the new version meets none it allows.
        if set(claim.profiles) & lost and not any(_conforms(row, p) for p in claim.profiles):
            names = " or ".join(claim.profiles)
            target = f"{row.resource_type}/{row.logical_id}"
            return {
                "severity": "error",
                "code": "conflict",
                "details": {"text": claim.element.id},
                "diagnostics": (
                    f"{target} would no longer conform to {names}, which {referrer} requires "
                    f"of its {claim.element.path}; change that reference first"
                ),
                "expression": [claim.element.path],
            }
    return None
