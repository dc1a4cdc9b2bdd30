"""Every index table and its value columns, declared once for extraction, inserts and COPY."""

from __future__ import annotations

from django.db.models import Model

from ...models import (
    DateIndex,
    PositionIndex,
    ReferenceIndex,
    StringIndex,
    TokenIndex,
    UriIndex,
)

# Value columns in the order an index row's values come (after resource, type and param).
TABLES: dict[type[Model], tuple[str, ...]] = {
    StringIndex: ("value", "exact"),
    TokenIndex: ("system", "code"),
    ReferenceIndex: ("target_type", "target_id", "external"),
    DateIndex: ("low", "high"),
    UriIndex: ("value",),
    PositionIndex: ("band", "latitude", "longitude"),
}
