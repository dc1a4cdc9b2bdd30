"""Search criteria of conditional interactions (If-None-Exist, `PUT`/`DELETE Type?criteria`)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from directory.errors import InvalidRequest

# Parameters the HTTP layer consumes itself; they never select resources.
TRANSPORT_PARAMS = frozenset({"_format"})


def criteria_pairs(criteria: str, what: str) -> list[tuple[str, str]]:
    """The criteria as (name, value) pairs, refused when empty or when a parameter is blank.

    Search ignores blank parameters, so a blank one here would silently widen the match to every
    resource of the type and write to (or 412 on) records the client never asked about.
    """
    pairs = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    pairs = [(name, value) for name, value in pairs if name not in TRANSPORT_PARAMS]
    if not pairs or any(not name or not value for name, value in pairs):
        raise InvalidRequest(
            f"{what} must be search criteria with values, e.g. identifier=system|value"
        )
    return pairs
