"""Text normalization shared by indexing and search so both sides fold text the same way."""

import unicodedata

MAX_INDEXED = 255


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a string, per FHIR string search rules."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())[:MAX_INDEXED]


def clip(text: str) -> str:
    return text[:MAX_INDEXED]
