"""Scopes: what a token (and its client) may do, and what each FHIR interaction requires.

A grant is a (resource type, permission) pair; permissions are the SMART v2 letters
c=create, r=read (read, vread, history), u=update, d=delete, s=search.

Grammar understood (case-sensitive, space-separated; anything else is ignored, never widened):

* SMART, in the `scope` claim: `system/<T>.<p>` where <T> is a directory resource type or `*`
  and <p> is v1 `read` (= rs), `write` (= cud), `*` (= cruds), or a v2 letter string in cruds
  order (`rs`, `cud`, `cruds`, ...). v2 scopes with a `?query` filter are ignored: this server
  cannot enforce the filter, so granting the unfiltered scope would widen access.
* NHS, in the `requested_scope` claim: `organization/<T>.read` (= rs) and
  `organization/<T>.write` (= cud), <T> as above (`organization/*.read` is the usual form).

`user/` and `patient/` scopes are ignored: they delegate a person's access in a patient or user
context, which a system-to-system directory call does not have; reading them as system scopes
would let a token issued for a person's app act on the whole directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

from .directory_port import directory

if TYPE_CHECKING:
    from .models import ApiClient

Grant = tuple[str, str]  # (resource type, permission letter)

PERMISSIONS = "cruds"
SMART_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
NHS_PERMISSIONS = {"read": "rs", "write": "cud"}

_TYPE = r"(?P<type>\*|[A-Z][A-Za-z]*)"
SMART_SCOPE = re.compile(rf"system/{_TYPE}\.(?P<perm>read|write|\*|[cruds]{{1,5}})")
NHS_SCOPE = re.compile(rf"organization/{_TYPE}\.(?P<perm>read|write)")

# Permission letters each interaction needs, all of them on the request's resource type.
# `history-system` lists every type's changes, so it needs its letters on *every* type (what
# `system/*.read` or `organization/*.read` give): returning only some types would need the
# history handler to filter by grant, and refusing is the fail-closed choice.
# An interaction missing here is refused. Override or extend with settings.SECURITY_SCOPE_RULES,
# whose keys are interaction codes or "<ResourceType>.<interaction>" for one type.
DEFAULT_SCOPE_RULES: dict[str, str] = {
    "capabilities": "",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "r",
    "history-system": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
    # A conditional write searches before it writes; one that creates needs `c` besides.
    "conditional-update": "su",
    "conditional-delete": "sd",
    # A Bundle posted to the base needs nothing itself: each of its entries is decided alone.
    "batch": "",
    "transaction": "",
}
ALL_TYPES_INTERACTIONS = frozenset({"history-system"})


def token_grants(claims: dict[str, Any]) -> set[Grant]:
    """Grants the token's scope claims carry, per settings.SECURITY_SCOPE_CONVENTION."""
    grants: set[Grant] = set()
    if _uses("smart"):
        grants |= smart_grants(_scope_list(claims.get("scope")))
    if _uses("nhs"):
        grants |= nhs_grants(_scope_list(claims.get("requested_scope")))
    return grants


def client_grants(allowed_scopes: Iterable[str]) -> set[Grant]:
    """Grants a client's allowed scopes permit, in whichever conventions are enabled."""
    scopes = list(allowed_scopes)
    grants: set[Grant] = set()
    if _uses("smart"):
        grants |= smart_grants(scopes)
    if _uses("nhs"):
        grants |= nhs_grants(scopes)
    return grants


def effective_grants(claims: dict[str, Any], client: ApiClient | None = None) -> set[Grant]:
    """The token's grants, cut down to what its client may ever have (when a client is known)."""
    claimed = (_scope_list(claims.get("scope")), _scope_list(claims.get("requested_scope")))
    allowed = frozenset(client.scope_set) if client is not None else None
    return set(_effective(*map(tuple, claimed), allowed, *_rules()))


def _rules() -> tuple[str, tuple[str, ...]]:
    """What else a grant expansion depends on: the scope convention and the directory's types."""
    return settings.SECURITY_SCOPE_CONVENTION, tuple(directory().resource_types())


# Every request asks this of the same few scope strings; expanding `system/*.cruds` over every
# type and intersecting with the client's cost about 0.06 ms. Keyed by everything it reads.
@lru_cache(maxsize=1024)
def _effective(
    scope: tuple[str, ...],
    requested_scope: tuple[str, ...],
    allowed: frozenset[str] | None,
    convention: str,
    types: tuple[str, ...],
) -> frozenset[Grant]:
    grants = token_grants({"scope": list(scope), "requested_scope": list(requested_scope)})
    if allowed is not None:
        grants &= client_grants(allowed)
    return frozenset(grants)


def describe(grants: set[Grant]) -> set[str]:
    """Grants as strings for the context and audit, e.g. {"Organization.r"}."""
    return set(_described(frozenset(grants)))


@lru_cache(maxsize=256)
def _described(grants: frozenset[Grant]) -> frozenset[str]:
    return frozenset(f"{resource_type}.{permission}" for resource_type, permission in grants)


def smart_grants(scopes: Iterable[str]) -> set[Grant]:
    grants: set[Grant] = set()
    for scope in scopes:
        match = SMART_SCOPE.fullmatch(scope)
        if match:
            letters = SMART_V1_PERMISSIONS.get(match["perm"]) or _v2_letters(match["perm"])
            grants |= _expand(match["type"], letters)
    return grants


def nhs_grants(scopes: Iterable[str]) -> set[Grant]:
    grants: set[Grant] = set()
    for scope in scopes:
        match = NHS_SCOPE.fullmatch(scope)
        if match:
            grants |= _expand(match["type"], NHS_PERMISSIONS[match["perm"]])
    return grants


def required_grants(interaction: str, resource_type: str) -> set[Grant] | None:
    """Grants an interaction needs; None when no rule covers it (the caller must refuse)."""
    rules = {**DEFAULT_SCOPE_RULES, **(getattr(settings, "SECURITY_SCOPE_RULES", None) or {})}
    letters = rules.get(f"{resource_type}.{interaction}", rules.get(interaction))
    if letters is None:
        return None
    all_types = directory().resource_types()
    types = all_types if interaction in ALL_TYPES_INTERACTIONS else (resource_type,)
    # An unknown letter stays in the requirement, so nothing can ever satisfy it.
    return {(t, letter) for t in types for letter in letters}


def permits(grants: set[Grant], interaction: str, resource_type: str) -> bool:
    required = required_grants(interaction, resource_type)
    return required is not None and required <= grants


def _uses(convention: str) -> bool:
    return settings.SECURITY_SCOPE_CONVENTION in (convention, "both")


def _scope_list(value: Any) -> list[str]:
    """A scope claim as a list: a space-separated string, or (as some servers send) a list."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [scope for item in value for scope in item.split()]
    return []


def _v2_letters(perm: str) -> str:
    """The letters of a v2 permission string; "" unless they are distinct and in cruds order."""
    ordered = "".join(letter for letter in PERMISSIONS if letter in perm)
    return perm if perm == ordered else ""


def _types(resource_type: str) -> tuple[str, ...]:
    """The directory types a scope's type names: all for `*`, none for an unknown type."""
    all_types = directory().resource_types()
    if resource_type == "*":
        return tuple(all_types)
    return (resource_type,) if resource_type in all_types else ()


def _expand(resource_type: str, letters: str) -> set[Grant]:
    return {(t, letter) for t in _types(resource_type) for letter in letters}


def _all_allowed(types: tuple[str, ...], letter: str, allowed: set[Grant]) -> bool:
    return all((t, letter) in allowed for t in types)


def grantable_scopes(requested: Iterable[str], allowed_scopes: Iterable[str]) -> list[str]:
    """The SMART system scopes of `requested`, each cut down to what `allowed_scopes` permit.

    The intersection is taken on grants, not strings: `system/Organization.rs` is within an
    allowed `system/*.cruds`, and `system/*.cruds` asked by a client allowed `system/*.rs` is
    granted as `system/*.rs`. Scopes this server does not understand are never granted.
    """
    allowed = client_grants(allowed_scopes)
    granted: list[str] = []
    for scope in requested:
        match = SMART_SCOPE.fullmatch(scope)
        if not match:
            continue
        letters = SMART_V1_PERMISSIONS.get(match["perm"]) or _v2_letters(match["perm"])
        types = _types(match["type"])
        kept = "".join(
            letter for letter in letters if types and _all_allowed(types, letter, allowed)
        )
        if kept == letters:
            granted.append(scope)
        elif kept:
            granted.append(f"system/{match['type']}.{kept}")
    return list(dict.fromkeys(granted))
