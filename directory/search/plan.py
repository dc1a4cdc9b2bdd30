"""The parsed form of a search request, as read by the filter, paging, include and shaping steps."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from ..errors import InvalidRequest
from ..registry import ResourceDef

# Sort keys a client may name, and the Resource column each one orders by.
SORT_FIELDS = {"_id": "logical_id", "_lastUpdated": "last_updated", "name": "sort_name"}


@dataclass(frozen=True)
class Include:
    """One validated `_include`/`_revinclude`: which source's reference params, to which type."""

    source_type: str
    params: tuple[str, ...]
    target_type: str | None
    iterate: bool = False  # `:iterate`: also applied to resources earlier includes added


@dataclass
class Plan:
    """What a request asks for: filter conditions plus the result parameters that shape pages."""

    resource_type: str
    rdef: ResourceDef
    strict: bool
    filters_only: bool = False
    conditions: list[Q] = field(default_factory=list)
    filter_params: list[tuple[str, str]] = field(default_factory=list)
    result_params: dict[str, list[str]] = field(default_factory=dict)
    count: int | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)
    total_mode: str = "bounded"  # no `_total`: exact up to a limit, else left out
    summary: str | None = None
    elements: set[str] | None = None
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    cursor: str | None = None
    owner: str = ""  # the client's key from the API layer: whose snapshots may be reused
    ignored: list[str] = field(default_factory=list)
    near_points: list = field(default_factory=list)  # parsed `near` points (near.py)

    @property
    def page_size(self) -> int:
        return settings.FHIR_DEFAULT_COUNT if self.count is None else self.count

    def skip(
        self, note: str, strict_message: str | None = None, expression: str | None = None
    ) -> None:
        """Lenient: record why a parameter was ignored. Strict: refuse the request."""
        if self.strict:
            raise InvalidRequest(
                strict_message or note.replace(" was ignored", ""),
                expression=[expression] if expression else None,
            )
        self.ignored.append(note)
