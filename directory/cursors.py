"""Signed page cursors, read back field by field.

A valid signature says the server made a cursor, not that its contents are sane: a known or
leaked SECRET_KEY, or a cursor from an older release, can carry any JSON. Every field is checked
for its type and range against a table declared with the cursor, and unknown fields are refused,
so a cursor never reaches a query with a value the query cannot take.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from django.core import signing

Check = Callable[[Any], bool]

MAX_POSITION = 2**31 - 1  # PositiveIntegerField positions and totals
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_signed(token: str, salt: str) -> dict | None:
    """The JSON object signed in `token` with `salt`, or None for anything else."""
    try:
        state = signing.loads(token, salt=salt)
    except (signing.BadSignature, ValueError, zlib.error, RecursionError):
        # ValueError covers bad base64, bad UTF-8 and bad JSON inside a valid signature.
        return None
    return state if isinstance(state, dict) else None


def has_fields(state: Mapping, fields: Mapping[str, Check]) -> bool:
    """Whether `state` has exactly the keys of `fields`, each passing its check."""
    return state.keys() == fields.keys() and all(check(state[key]) for key, check in fields.items())


def integer(low: int, high: int) -> Check:
    # bool is an int to Python, never to a cursor.
    return lambda value: type(value) is int and low <= value <= high


def boolean(value: Any) -> bool:
    return type(value) is bool


def matching(pattern: re.Pattern) -> Check:
    return lambda value: type(value) is str and pattern.fullmatch(value) is not None
