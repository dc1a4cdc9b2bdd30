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
  (`authorize_entry`), its decisions recorded under its entry number;
- a Bulk Data `$export` needs `r` on every type it exports (without `_type`: exactly the supported
  types the grants let it read, `exportable_types`), and each `_typeFilter` query what the same
  search would need; its status, cancellation and files need `r` on the job's types again, so a
  token that lost a type cannot fetch it (the owner check comes before, in fhirapi/bulk.py).

The subscription worker asks here too, through subscriptions/policy.py, before it sends a
notification (`notification_refusal`): the same rule, applied to the owning client as it stands.

Every response is checked once more before it leaves (`check_response`): an entry of a type the
grants do not cover fails the request closed. Each decision is written to the security context
and from there to the request audit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, cast

from django.conf import settings
from django.http import HttpRequest
from rest_framework.permissions import BasePermission

from directory.errors import FHIRError, NotFound
from directory.registry import RESOURCE_TYPES, SHARED_TYPES
from directory.search.reach import reach
from directory.stored import resource_type_of
from security.context import SecurityContext, context_of
from security.keys import has_usable_key
from security.middleware.spine import expected_interaction_id
from security.models import ApiClient
from security.refusal import REASONS
from security.scopes import Grant, client_grants, describe, effective_grants, required_grants
from subscriptions import resource as subscription_resource

SUBSCRIPTION = subscription_resource.RESOURCE_TYPE
# What a client may do with Subscriptions: its own, one at a time (authorize_subscription).
SUBSCRIPTION_INTERACTIONS = frozenset(
    {"create", "read", "vread", "update", "delete", "history-instance", "search-type"}
)

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from .views import FHIRView

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

    def has_permission(self, request: Request, view: APIView) -> bool:
        view = cast("FHIRView", view)  # the permission of FHIRView and its subclasses only
        route = view.route_for(request)
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
        if resource_type == SUBSCRIPTION:
            authorize_subscription(request, route.interaction, view.kwargs.get("logical_id"))
        return True


def authorize_subscription(request: HttpRequest, interaction: str, logical_id: str | None) -> None:
    """A Subscription is its owner's alone: a registered client, one Subscription at a time.

    Interactions that would reach other clients' Subscriptions (conditional writes, type
    history, batch entries) are refused; reading, updating or deleting another client's answers
    404, as for an id that does not exist. A search is cut to the owner's (`owned_search`).
    """
    context = context_of(request)
    if interaction not in SUBSCRIPTION_INTERACTIONS or context.client is None:
        _deny(context, interaction, "subscription-interaction")
    if interaction in ("search-type", "create"):
        context.decisions.append(f"{interaction} Subscription: own only")
        return
    owner = subscription_resource.owner_of(logical_id or "")
    # No owner: a new id (an update that creates it) or a Subscription that was never written
    # through the API (a bulk load), which no client may take over.
    orphan = owner is None and (
        interaction != "update" or subscription_resource.stored(logical_id or "")
    )
    if orphan or (owner is not None and owner != context.client.pk):
        _deny(context, interaction, "subscription-not-owner")
    context.decisions.append(f"{interaction} Subscription/{(logical_id or '')[:64]}: owner")


def owned_search(
    request: HttpRequest, resource_type: str, params: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """A Subscription search sees the client's own: `_id` cut to them (none: nothing matches)."""
    if resource_type != SUBSCRIPTION:
        return params
    client = context_of(request).client  # None is refused by authorize_subscription already
    ids = subscription_resource.owned_ids(client) if client is not None else []
    return [*params, ("_id", ",".join(ids)) if ids else NOTHING]


# A filter no stored resource passes: every version is stamped with the time it was written.
NOTHING = ("_lastUpdated", "lt1000-01-01")


def authorize_subscription_topic(request: HttpRequest, topic_type: str) -> None:
    """Subscribing to a topic needs `r` on its type: the notifications carry such resources."""
    authorize(context_of(request), "subscription topic", {(topic_type, "r")})


def authorize_subscription_events(request: HttpRequest, logical_id: str) -> None:
    """`$events` returns the topic's resources (or references to them): `r` on its type, as a
    notification needs (after the owner check, so a stranger still meets a 404)."""
    topic_type = subscription_resource.topic_type_of(logical_id)
    if topic_type is None:  # owned but no channel: cannot happen once authorize_subscription passed
        _deny(context_of(request), "subscription-events", "subscription-not-owner")
    authorize(context_of(request), "subscription-events", {(topic_type, "r")})


def _deny(context: SecurityContext, interaction: str, reason_code: str) -> NoReturn:
    context.decisions.append(f"{interaction} Subscription: deny {reason_code}")
    context.outcome = reason_code
    raise Denied(reason_code)


def authorize_search(
    request: HttpRequest, resource_type: str, pairs: list[tuple[str, str]]
) -> None:
    """Every type a search returns or matches on must be covered, beyond `s` on its own type."""
    authorize(context_of(request), "search-type", _reach_grants(resource_type, pairs))


def authorize_conditional_create(
    request: HttpRequest, resource_type: str, pairs: list[tuple[str, str]]
) -> None:
    """If-None-Exist is a search: matching it may return an existing resource."""
    if resource_type == SUBSCRIPTION:  # it could match another client's Subscription
        _deny(context_of(request), "conditional-create", "subscription-interaction")
    authorize_criteria(request, "conditional-create", resource_type, pairs)


def authorize_criteria(
    request: HttpRequest, what: str, resource_type: str, pairs: list[tuple[str, str]]
) -> None:
    """Criteria a conditional interaction matches on: `s` on its type and on every type reached."""
    needed = {(resource_type, "s")} | _reach_grants(resource_type, pairs)
    authorize(context_of(request), what, needed)


def exportable_types(request: HttpRequest) -> list[str]:
    """The types an `$export` without `_type` covers: every supported type the grants can read."""
    grants = _grants(context_of(request))
    if grants is None:
        return list(SHARED_TYPES)
    return [t for t in SHARED_TYPES if (t, "r") in grants]


def authorize_export(
    request: HttpRequest, types: Iterable[str], type_filters: dict[str, list[list[tuple[str, str]]]]
) -> None:
    """A kick-off: `r` on each exported type; each `_typeFilter` query is judged as a search
    (`s` on its type, and whatever its chains and `_has` search on other types)."""
    needed = {(t, "r") for t in types} or {("*", "r")}  # nothing readable: refuse, not export none
    for resource_type, queries in type_filters.items():
        for pairs in queries:
            needed |= {(resource_type, "s")} | _reach_grants(resource_type, pairs)
    authorize(context_of(request), "export", needed)


def authorize_export_job(request: HttpRequest, what: str, types: Iterable[str]) -> None:
    """An owner's later request on its job (status, cancel, one file): `r` on those types."""
    authorize(context_of(request), what, {(t, "r") for t in types})


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
    if resource_type == SUBSCRIPTION:
        _deny(context, f"{interaction} entry", "subscription-interaction")
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
        missing = _missing(needed, grants)
    context.decisions.append(_describe(what, needed or set(), missing))
    if missing:
        context.outcome = "scope-missing"
        raise Denied("scope-missing")


def _missing(needed: set[Grant], grants: set[Grant]) -> set[Grant]:
    return needed - grants


API_KEY_CHECK = "security.middleware.api_key.ApiKeyMiddleware"


def notification_refusal(
    owner: ApiClient, interaction: str, resource_types: Iterable[str]
) -> str | None:
    """May a Subscription's owner be sent resources of these types now? None, or why not.

    The subscription worker's question (subscriptions/policy.py), answered on the client as it
    stands, with no request and no token: one the credential checks would turn away (suspended,
    or without a key that would pass) gets nothing; where tokens are required, its allowed
    scopes (the most any token of it carries) must give `r` on every type, as a request needs.
    """
    if owner.status != ApiClient.ACTIVE:
        return "client-suspended"
    if API_KEY_CHECK in settings.SECURITY_MIDDLEWARE and not has_usable_key(owner):
        return "key-invalid"
    grants = _standing_grants(owner)
    needed = {(t, "r") for t in resource_types}
    if grants is not None and _missing(needed, grants):
        return "scope-missing"
    return None


def _standing_grants(client: ApiClient) -> set[Grant] | None:
    """What any token of the client could carry; None where tokens are not required."""
    return client_grants(client.scope_set) if settings.SECURITY_REQUIRE_BEARER else None


def check_response(request: HttpRequest, data: Any) -> None:
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
    bundle_type: str | None, entries: Iterable[dict[str, Any]], grants: set[Grant]
) -> Iterator[Grant]:
    for entry in entries:
        resource = entry.get("resource") or {}
        resource_type = resource_type_of(resource)
        # An operation's own answer (OperationOutcome, Parameters) is no stored data.
        if resource_type is None or resource_type in ("OperationOutcome", "Parameters"):
            continue
        if bundle_type in RESPONSE_BUNDLES:
            yield from _response_entry_grants(entry, resource, resource_type, grants)
            continue
        how = "history" if bundle_type == "history" else entry.get("search", {}).get("mode")
        yield resource_type, ENTRY_LETTERS.get(how, "r")


def _response_entry_grants(
    entry: dict[str, Any], resource: dict[str, Any], resource_type: str, grants: set[Grant]
) -> Iterator[Grant]:
    """A batch entry's answer: a search's Bundle is judged like a search's; a resource it wrote
    (it has a Location) needs `c` or `u` on its type, one it read needs `r`."""
    if resource_type == "Bundle":
        yield from _entry_grants(resource.get("type"), resource.get("entry") or [], grants)
    elif (entry.get("response") or {}).get("location"):
        written = [(resource_type, letter) for letter in "cu"]
        yield next((g for g in written if g in grants), written[0])
    else:
        yield resource_type, "r"


def _describe(what: str, needed: set[Grant], missing: set[Grant]) -> str:
    def names(grants: set[Grant]) -> str:
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


# ---------------------------------------------------------------- bulk import


def authorize_import(
    request: HttpRequest, declared_types: Iterable[str] = ()
) -> frozenset[str] | None:
    """`$import`: the types this client may import, each needing `c` and `u` (an import creates
    new ids and writes new versions of stored ones); None in a token-less deployment (all).

    Decided before the body is read: 403 when the client may write no type at all, or when an
    input names a type it may not write. A line of another type in an NDJSON upload, whose types
    only reading it tells, is refused as a line error by the import (the job carries this set).
    """
    context = context_of(request)
    context.interaction = "import"
    _check_spine_interaction(request, context, "import", "")
    grants = _grants(context)
    writable = None
    if grants is not None:
        writable = frozenset(t for t in SHARED_TYPES if {(t, "c"), (t, "u")} <= grants)
    declared = set(declared_types)
    covered = declared or writable or set(SHARED_TYPES)
    authorize(context, "import", {(t, letter) for t in covered for letter in "cu"})
    return writable


def import_owner(request: HttpRequest) -> str:
    """Who owns an import job: the registered API client (empty for a client-less deployment)."""
    client = context_of(request).client
    return str(client.pk) if client is not None else ""


def authorize_import_job(request: HttpRequest, owner: str, what: str) -> None:
    """Only the client that started an import may poll it, read its errors or cancel it.

    Another client gets the 404 an unknown job gets: a refusal would confirm the job exists.
    """
    context = context_of(request)
    allowed = owner == import_owner(request)
    verdict = "allow" if allowed else "deny, not the owner"
    context.decisions.append(f"{what} of an import job: {verdict}")
    if not allowed:
        raise NotFound("No such import job")
