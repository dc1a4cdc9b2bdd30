"""Identifier rules: NPI check digits, and systems whose values identify one resource only.

The NPI is unique among Practitioners and Organizations by default (CMS issues one number to one
individual or one organization); `FHIR_UNIQUE_NPI=false` lets a directory hold records that share
one, as published example data such as the Plan-Net IG's does, and leaves duplicates to the
admin's duplicates page. Administrators mark further systems unique in the admin
(`UniqueIdentifierSystem`). Storage enforces both on every write, with a transaction lock on
system|value so two concurrent writes of the same identifier cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import connection

from .errors import Conflict
from .normalize import clip

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
# The resource types one NPI may identify, and of which it may identify only one.
NPI_TYPES = ("Practitioner", "Organization")
# An NPI is an ISO 7812 card number with the health-industry prefix 80840 left out.
NPI_PREFIX = "80840"


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits, check digit last."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def is_valid_npi(value: object) -> bool:
    """Ten ASCII digits whose last one is the Luhn check digit over 80840 and the first nine."""
    return (
        isinstance(value, str)
        and len(value) == 10
        and value.isascii()
        and value.isdigit()
        and luhn_valid(NPI_PREFIX + value)
    )


def _identifiers(node: object, trail: str) -> Iterator[tuple[str, dict]]:
    """Every object with a `system` and a `value` (an Identifier), with its FHIRPath-like path."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _identifiers(item, f"{trail}[{i}]")
    elif isinstance(node, dict):
        if "system" in node and "value" in node:
            yield trail, node
        for key, item in node.items():
            if isinstance(item, dict | list):
                yield from _identifiers(item, f"{trail}.{key}")


def npi_issues(resource_type: str, content: dict) -> list[dict]:
    """An OperationOutcome issue for each NPI, anywhere in the resource, that fails its check."""
    issues = []
    for trail, identifier in _identifiers(content, resource_type):
        if identifier.get("system") != NPI_SYSTEM or is_valid_npi(identifier.get("value")):
            continue
        expression = f"{trail}.value"
        issues.append(
            {
                "severity": "error",
                "code": "value",
                "diagnostics": f"{expression}: not a valid NPI (10 digits, the last a Luhn check "
                "digit over 80840 and the first nine)",
                "expression": [expression],
            }
        )
    return issues


def unique_types(system: str) -> tuple[str, ...]:
    """The resource types among which a value of `system` may identify one resource only."""
    from .models import UniqueIdentifierSystem

    if system == NPI_SYSTEM:
        return NPI_TYPES if settings.FHIR_UNIQUE_NPI else ()
    row = UniqueIdentifierSystem.objects.filter(system=system).first()
    return row.types() if row else ()


def check_unique(resource_type: str, logical_id: str, content: dict) -> None:
    """409 when an identifier of a unique system already identifies another resource.

    Call inside the write's transaction, before its index rows are inserted: the lock on
    system|value holds until the transaction ends, so a concurrent write of the same identifier
    waits and then sees this one.
    """
    from .models import TokenIndex

    claimed = _unique_claims(resource_type, content)
    for system, value in sorted(claimed):
        _lock_identifier(system, value)
    for (system, value), (expression, types) in sorted(claimed.items()):
        holders = (
            TokenIndex.objects.filter(
                param="identifier", system=system, code=value, resource_type__in=types
            )
            .exclude(resource_type=resource_type, resource__logical_id=logical_id)
            .filter(resource__deleted=False)
        )
        if holders.exists():
            raise Conflict(
                f"{expression}: identifier {system}|{value} already identifies another "
                f"{' or '.join(types)}",
                expression=[expression],
                code="duplicate",
            )


def check_unique_batch(items: list[tuple[str, str, dict]]) -> None:
    """The same rule for a bulk load of new resources: (type, id, content) items, in one query
    per system and batch rather than one per resource."""
    from .models import TokenIndex

    memo: dict[str, tuple[str, ...]] = {}
    holders: dict[tuple[str, str], str] = {}
    wanted: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for resource_type, logical_id, content in items:
        claims = _unique_claims(resource_type, content, lambda s: _memo_types(memo, s))
        for (system, value), (expression, types) in claims.items():
            name = f"{resource_type}/{logical_id}"
            if holders.setdefault((system, value), name) != name:
                raise Conflict(
                    f"{name}: identifier {system}|{value} also identifies "
                    f"{holders[(system, value)]}",
                    expression=[expression],
                    code="duplicate",
                )
            wanted.setdefault((system, types), set()).add(value)
    for (system, types), values in wanted.items():
        taken = TokenIndex.objects.filter(
            param="identifier", system=system, code__in=values, resource_type__in=types
        ).filter(resource__deleted=False)
        value = taken.values_list("code", flat=True).first()
        if value is not None:
            raise Conflict(
                f"{holders[(system, value)]}: identifier {system}|{value} already identifies "
                f"another {' or '.join(types)}",
                code="duplicate",
            )


def final_state_conflict(
    items: list[tuple[str, str, dict]], replaced: set[int]
) -> tuple[int, Conflict] | None:
    """The rule judged on the state several writes of one transaction leave: (type, id, content)
    items, `replaced` the Resource pks whose index rows these writes replace.

    The first item whose unique identifier another item also claims, or a resource the writes
    leave in place still holds, with its 409; None when all may be stored. Two writes claiming
    one NPI are refused; a write that drops an identifier frees it for another write. Every
    claim is locked first (one statement), as `check_unique` locks each.
    """
    from django.db.models import Q

    from .models import TokenIndex

    memo: dict[str, tuple[str, ...]] = {}
    claims = [_unique_claims(t, content, lambda s: _memo_types(memo, s)) for t, _, content in items]
    claimant: dict[tuple[str, str], int] = {}
    for position, claimed in enumerate(claims):
        for key, (expression, _) in sorted(claimed.items()):
            first = claimant.setdefault(key, position)
            if first != position:
                other = f"{items[first][0]}/{items[first][1]}"
                return position, _duplicate(expression, key, f"is also claimed by {other}")
    _lock_identifiers(sorted(claimant))
    if not claimant:
        return None
    wanted = Q()
    for (system, value), position in claimant.items():
        types = claims[position][(system, value)][1]
        wanted |= Q(system=system, code=value, resource_type__in=types)
    held = set(
        TokenIndex.objects.filter(wanted, param="identifier", resource__deleted=False)
        .exclude(resource_id__in=replaced)
        .values_list("system", "code")
    )
    found = sorted(claimant[key] for key in held)
    if not found:
        return None
    position = found[0]
    for key, (expression, types) in sorted(claims[position].items()):
        if key in held:
            return position, _duplicate(
                expression, key, f"already identifies another {' or '.join(types)}"
            )
    raise AssertionError("unreachable")


def _duplicate(expression: str, key: tuple[str, str], what: str) -> Conflict:
    system, value = key
    return Conflict(
        f"{expression}: identifier {system}|{value} {what}",
        expression=[expression],
        code="duplicate",
    )


def _lock_identifiers(keys: list[tuple[str, str]]) -> None:
    """`_lock_identifier` for many values in one statement, in the given (sorted) order."""
    if connection.vendor == "postgresql" and keys:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM unnest(%s::text[]) AS k",
                [[f"unique-identifier:{system}|{value}" for system, value in keys]],
            )


def _memo_types(memo: dict, system: str) -> tuple[str, ...]:
    if system not in memo:
        memo[system] = unique_types(system)
    return memo[system]


def _unique_claims(
    resource_type: str, content: dict, types_of: Callable[[str], tuple[str, ...]] | None = None
) -> dict:
    """{(system, value): (expression, types)} for the resource's own unique identifiers."""
    types_of = types_of or unique_types
    claimed: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
    for i, identifier in enumerate(content.get("identifier") or []):
        system, value = identifier.get("system"), identifier.get("value")
        if not system or not value:
            continue
        types = types_of(system)
        if resource_type in types:
            expression = f"{resource_type}.identifier[{i}]"
            # Compared as the token index stores them.
            claimed.setdefault((clip(system), clip(value)), (expression, types))
    return claimed


def _lock_identifier(system: str, value: str) -> None:
    """A transaction lock on system|value (PostgreSQL; SQLite serializes all writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                [f"unique-identifier:{system}|{value}"],
            )
