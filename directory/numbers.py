"""Integers read from request text: ASCII digits only, never an int() that cannot convert.

str.isdigit() and `\\d` accept other scripts' digits and superscripts (int("²") raises), and
int() refuses strings over 4,300 digits; either used to surface as a 500. A number beyond a
column's range would fail in the database instead.
"""

from __future__ import annotations

MAX_BIGINT = 2**63 - 1  # BigAutoField keys and version numbers


def _digits(text: str | None) -> str | None:
    """`text` without leading zeros if it is a non-negative integer in ASCII digits."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return text.lstrip("0") or "0"


def capped_integer(text: str | None, cap: int) -> int | None:
    """`text` as an integer no greater than `cap` (larger ones are `cap`), or None."""
    digits = _digits(text)
    if digits is None:
        return None
    return cap if len(digits) > len(str(cap)) else min(int(digits), cap)


def bounded_integer(text: str | None, maximum: int = MAX_BIGINT) -> int | None:
    """`text` as an integer if it is one no greater than `maximum`, else None."""
    digits = _digits(text)
    if digits is None or len(digits) > len(str(maximum)):
        return None
    value = int(digits)
    return value if value <= maximum else None
