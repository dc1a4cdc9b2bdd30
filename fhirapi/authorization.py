"""The one authorization decision of the FHIR API: may this client do this, on these types?

Middleware has established who the client is (certificate, API key, token). What it may do is
decided here, and only here, from the route the view dispatches to and from every other type the
request reads or writes:

- the interaction on the request's type (`search-type` needs `s`, `read` needs `r`, ...);
- a search's `_include`, `_revinclude` (also `:iterate`), chains and `_has`: a returned type
  needs `r`, a type searched only to match needs `s`; a request naming a type it may not read is
  refused whole (403), never answered with the forbidden entries silently left out, because a
  client that asked for related resources and got none would take "none" for the truth;
- a conditional create (`If-None-Exist`) searches before it writes, so it needs `s` as well as `c`;
- an update that would create (a new or deleted id) needs `c` as well as `u`, decided inside the
  write's transaction so no race turns an update into an unauthorised create;
- a conditional update or delete (`PUT`/`DELETE Type?criteria`) needs `s` besides `u`/`d`, and
  whatever its criteria search on other types;
- each entry of a batch or transaction Bundle is decided exactly as the same request sent alone
  (`authorize_entry`), its decisions recorded under its entry number.

Every response is checked once more before it leaves (`check_response`): an entry of a type the
grants do not cover fails the request closed. Each decision is written to the security context
and from there to the request audit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.permissions import BasePermission

from directory.errors import FHIRError
from directory.registry import RESOURCE_TYPES
from directory.search.reach import reach
from directory.stored import resource_type_of
from security.context import SecurityContext, context_of
from security.middleware.spine import expected_interaction_id
from security.refusal import REASONS
from security.scopes import Grant, describe, effective_grants, required_grants

if TYPE_CHECKING:
    from .routes import Route

# Letters a resource needs to appear in a response, by how it appears there.
ENTRY_LETTERS = {"match": "s", "include": "r", "history": "r"}
# Routed interactions whose FHIR code only the body tells: a Bundle posted to the base is a
# batch or a transaction.
DECIDED_BY_BODY = frozenset({"transaction"})
# Answers to a posted batch or transaction: each entry is what one interaction returned.
RESPONSE_BUNDLES = frozenset({"batch-response", "transaction-response"})


class Denied(FHIRError):
    """A refusal of the decision point, rendered like the middleware's refusals."""

    def __init__(self, reason_code: str) -> None:
        reason = REASONS[reason_code]
        super().__init__(reason.message, status=reason.status, code=reason.issue_code)
        self.reason_code = reason_code


class ScopePermission(BasePermission):
    """DRF permission: the route's interaction on the request's type (and Spine's naming)."""

    def has_permission(self, request: HttpRequest, view: Any) -> bool:
        route: Route | None = view.route_for(request)
        if route is None:
            return True  # DRF answers 405 next; no handler runs
        context = context_of(request)
        resource_type = view.kwargs.get("resource_type", "")
        context.interaction = route.interaction
        context.resource_type = resource_type
        context.resource_id = view.kwargs.get("logical_id", "")
        if route.interaction in DECIDED_BY_BODY:
            return True  # the handler calls authorize_bundle once it has read the body
        _check_spine_interaction(request, context, route.interaction, resource_type)
        if resource_type and resource_type not in RESOURCE_TYPES:
            return True  # the handler answers 404; no data of any type is touched
        authorize(context, route.interaction, required_grants(route.interaction, resource_type))
        return True


def authorize_search(
    request: HttpRequest, resource_type: str, pairs: list[tuple[str, str]]
) -> None:
    """Every type a search returns or matches on must be covered, beyond `s` on its own type."""
    authorize(context_of(request), "search-type", _reach_grants(resource_type, pairs))


def authorize_conditional_create(
    request: HttpRequest, resource_type: str, pairs: list[tuple[str, str]]
) -> None:
    """If-None-Exist is a search: matching it may return an existing resource."""
    authorize_criteria(request, "conditional-create", resource_type, pairs)


def authorize_criteria(
    request: HttpRequest, what: str, resource_type: str, pairs: list[tuple[str, str]]
) -> None:
    """Criteria a conditional interaction matches on: `s` on its type and on every type reached."""
    needed = {(resource_type, "s")} | _reach_grants(resource_type, pairs)
    authorize(context_of(request), what, needed)


def authorize_bundle(request: HttpRequest, bundle_type: str) -> None:
    """A posted Bundle, once its type is known: named in the audit and, under Spine, checked
    against Ssp-InteractionID (`...:batch` or `...:transaction`). Its entries are decided alone."""
    context = context_of(request)
    context.interaction = bundle_type
    _check_spine_interaction(request, context, bundle_type, "")
    authorize(context, bundle_type, required_grants(bundle_type, ""))


def authorize_entry(
    request: HttpRequest,
    interaction: str,
    resource_type: str,
    criteria: list[tuple[str, str]] | None = None,
) -> None:
    """An entry of a batch or transaction: what the same interaction would need sent alone.

    `criteria` are an entry's search parameters, If-None-Exist or conditional criteria. An update
    that creates still needs `c`, decided by `creation_guard` inside the write.
    """
    context = context_of(request)
    authorize(context, interaction, required_grants(interaction, resource_type))
    if criteria is None:
        return
    if interaction == "search-type":
        authorize(context, "search-type", _reach_grants(resource_type, criteria))
    else:
        authorize_criteria(request, f"{interaction} criteria", resource_type, criteria)


@contextmanager
def entry_decisions(request: HttpRequest, index: int) -> Iterator[None]:
    """Decisions made while handling entry `index` are recorded as `entry <index>: ...`."""
    context = context_of(request)
    start = len(context.decisions)
    try:
        yield
    finally:
        context.decisions[start:] = [f"entry {index}: {d}" for d in context.decisions[start:]]


def creation_guard(request: HttpRequest, resource_type: str) -> Callable[[], None]:
    """Called by storage inside the write's transaction when an update would create."""

    def guard() -> None:
        authorize(context_of(request), "update-as-create", {(resource_type, "c")})

    return guard


def authorize(context: SecurityContext, what: str, needed: set[Grant] | None) -> None:
    """Refuse with "scope-missing" unless the grants cover `needed`; record the decision."""
    grants = _grants(context)
    context.granted_scopes = describe(grants or set())
    if grants is None:
        missing: set[Grant] = set()  # token-less deployment: certificate and key alone decide
    elif needed is None:
        missing = {("*", "?")}  # no rule covers the interaction: refuse
    else:
        missing = needed - grants
    context.decisions.append(_describe(what, needed or set(), missing))
    if missing:
        context.outcome = "scope-missing"
        raise Denied("scope-missing")


def check_response(request: HttpRequest, data: object) -> None:
    """Fail closed if a Bundle carries an entry of a type the grants do not cover."""
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        return
    context = context_of(request)
    grants = _grants(context)
    if grants is None:
        return
    needed = set(_entry_grants(data.get("type"), data.get("entry") or [], grants))
    if not needed <= grants:
        authorize(context, "response", needed)


def _grants(context: SecurityContext) -> set[Grant] | None:
    """The request's grants; None when the deployment runs without tokens (no scope limits)."""
    if context.token_claims is None:
        # No verified token although one is required means the bearer check is missing from the
        # chain: nothing is granted rather than everything.
        return set() if settings.SECURITY_REQUIRE_BEARER else None
    # Asked by the permission, each search or entry check and the final response check: parse the
    # scopes once per request, not at every question.
    if context.grants is None:
        context.grants = effective_grants(context.token_claims, context.client)
    return context.grants


def _reach_grants(resource_type: str, pairs: list[tuple[str, str]]) -> set[Grant]:
    reached = reach(resource_type, pairs)
    needed = {(t, "r") for t in reached.returned - {resource_type}}
    needed |= {(t, "s") for t in reached.matched - {resource_type}}
    return needed


def _entry_grants(
    bundle_type: object, entries: Iterable[dict], grants: set[Grant]
) -> Iterator[Grant]:
    for entry in entries:
        resource = entry.get("resource") or {}
        resource_type = resource_type_of(resource)
        if resource_type in (None, "OperationOutcome"):
            continue
        if bundle_type in RESPONSE_BUNDLES:
            yield from _response_entry_grants(entry, resource, grants)
            continue
        how = "history" if bundle_type == "history" else entry.get("search", {}).get("mode")
        yield resource_type, ENTRY_LETTERS.get(how, "r")


def _response_entry_grants(entry: dict, resource: dict, grants: set[Grant]) -> Iterator[Grant]:
    """A batch entry's answer: a search's Bundle is judged like a search's; a resource it wrote
    (it has a Location) needs `c` or `u` on its type, one it read needs `r`."""
    resource_type = resource_type_of(resource)
    if resource_type is None:  # _entry_grants skips these before asking
        return
    if resource_type == "Bundle":
        yield from _entry_grants(resource.get("type"), resource.get("entry") or [], grants)
    elif (entry.get("response") or {}).get("location"):
        written = [(resource_type, letter) for letter in "cu"]
        yield next((g for g in written if g in grants), written[0])
    else:
        yield resource_type, "r"


def _describe(what: str, needed: set[Grant], missing: set[Grant]) -> str:
    def names(grants: Iterable[Grant]) -> str:
        return ",".join(sorted(f"{t}.{letter}" for t, letter in grants)) or "-"

    verdict = f"deny missing {names(missing)}" if missing else "allow"
    return f"{what} needs {names(needed)}: {verdict}"


def _check_spine_interaction(
    request: HttpRequest, context: SecurityContext, interaction: str, resource_type: str
) -> None:
    """Under the Spine profile, Ssp-InteractionID must name the interaction actually routed."""
    if not settings.SECURITY_SPINE_PROFILE:
        return
    presented = request.headers.get("Ssp-InteractionID", "")
    if presented != expected_interaction_id(interaction, resource_type):
        context.outcome = "spine-headers"
        raise Denied("spine-headers")
