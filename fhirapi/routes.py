"""The routing table: every FHIR interaction this server offers, with its URL and HTTP method.

URL patterns, view dispatch and the CapabilityStatement are all generated from ROUTES, so an
interaction is advertised exactly when it is routed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import handlers

# URL shapes below the FHIR base. A resource type starts with a capital letter, which keeps it
# apart from `metadata` and `_history`; ids are checked by storage so bad ones get a 400.
TYPE = r"(?P<resource_type>[A-Z][A-Za-z]*)"
ID = r"(?P<logical_id>[^/]+)"
VID = r"(?P<version_id>[^/]+)"

PATTERNS = {
    "metadata": r"^metadata$",
    "system-history": r"^_history$",
    "type": rf"^{TYPE}$",
    "type-search": rf"^{TYPE}/_search$",
    "type-history": rf"^{TYPE}/_history$",
    "instance": rf"^{TYPE}/{ID}$",
    "instance-history": rf"^{TYPE}/{ID}/_history$",
    "version": rf"^{TYPE}/{ID}/_history/{VID}$",
    "system": r"^$",  # the base itself, where batch and transaction Bundles are posted
}


@dataclass(frozen=True)
class Route:
    interaction: str  # FHIR interaction code (CapabilityStatement restful-interaction)
    level: str  # "system" | "type" | "instance"
    pattern: str  # key into PATTERNS
    method: str
    handler: Callable


ROUTES: tuple[Route, ...] = (
    Route("capabilities", "system", "metadata", "GET", handlers.capabilities),
    Route("history-system", "system", "system-history", "GET", handlers.history_system),
    Route("search-type", "type", "type", "GET", handlers.search_type),
    Route("search-type", "type", "type-search", "POST", handlers.search_type_post),
    Route("create", "type", "type", "POST", handlers.create),
    Route("history-type", "type", "type-history", "GET", handlers.history_type),
    Route("read", "instance", "instance", "GET", handlers.read),
    Route("update", "instance", "instance", "PUT", handlers.update),
    Route("delete", "instance", "instance", "DELETE", handlers.delete),
    Route("history-instance", "instance", "instance-history", "GET", handlers.history_instance),
    Route("vread", "instance", "version", "GET", handlers.vread),
    # One route for both Bundle types; the handler tells them apart (capability lists both).
    Route("transaction", "system", "system", "POST", handlers.batch_or_transaction),
    Route("conditional-update", "type", "type", "PUT", handlers.conditional_update),
    Route("conditional-delete", "type", "type", "DELETE", handlers.conditional_delete),
)


def routes_by_pattern() -> dict[str, dict[str, Route]]:
    """{pattern key: {HTTP method: route}}, in PATTERNS order (which is URL matching order)."""
    table: dict[str, dict[str, Route]] = {key: {} for key in PATTERNS}
    for route in ROUTES:
        if route.method in table[route.pattern]:
            raise ValueError(f"Two routes for {route.method} {route.pattern}")
        table[route.pattern][route.method] = route
    return table


def interactions(level: str) -> list[str]:
    """Interaction codes at one level, in table order, without duplicates."""
    codes = [r.interaction for r in ROUTES if r.level == level]
    return list(dict.fromkeys(codes))
