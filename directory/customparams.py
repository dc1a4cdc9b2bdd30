"""Custom SearchParameters: stored by an administrator, checked on write, joined to the registry.

A `SearchParameter` resource is stored and versioned like any other type (API or web admin, both
through `directory.storage`). On write it is checked here (`check_definition`): code syntax, a
base among the directory types, a type the search engine evaluates, an expression fhirpathpy
compiles and evaluates, and no clash with a built-in or another active custom parameter on the
same base. An `active` one joins `registry.RESOURCES` (draft and retired ones do not).

Every worker process keeps its own registry, so each one checks a generation — the newest
SearchParameter version id and the newest finished reindex job, two index-only queries — at most
once every `SEARCHPARAM_REFRESH_SECONDS` (default 5) and rebuilds when it changed. The worker
that took a write refreshes at once. Staleness bound: another worker learns of a new, changed or
deleted parameter at most `SEARCHPARAM_REFRESH_SECONDS` after the write committed (plus the
duration of the request it is serving). A reindex job waits out that bound before it scans, so
no worker still writing index rows without the new parameter can be passed by the scan.

A custom parameter is only searchable once a reindex job covering its base type, created after
its last change, has finished: before that its index would hold only resources written since, and
a search on it is refused (409, `CustomParamNotReady`) rather than answered partially.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max

from . import registry
from .errors import Conflict, FHIRError, InvalidResource
from .searchparams.loader import params_of

if TYPE_CHECKING:
    from .models import Resource


RESOURCE_TYPE = "SearchParameter"
# The FHIR search parameter code syntax (SearchParameter.code, spd-1 on `name`).
CODE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
DEFAULT_REFRESH_SECONDS = 5
# Core and IG expressions stay under 1,000 characters; longer ones are refused before parsing.
MAX_EXPRESSION_LENGTH = 2000

log = logging.getLogger(__name__)


class CustomParamNotReady(FHIRError):
    """A search on a custom parameter whose index is not complete yet."""

    status = 409
    code = "incomplete"


@dataclass(frozen=True)
class CustomParam:
    logical_id: str
    base: str
    code: str
    ready: bool  # a reindex covering its base finished after its last change


_lock = threading.Lock()
_state: dict[str, Any] = {"generation": None, "checked": 0.0}
_builtin: dict[str, registry.ResourceDef] = dict(registry.RESOURCES)
_active: dict[tuple[str, str], CustomParam] = {}


def refresh_seconds() -> float:
    return float(getattr(settings, "SEARCHPARAM_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS))


def searchable_types() -> tuple[str, ...]:
    """Types whose search parameters the engine evaluates (what a custom one may declare); a
    custom `special` parameter has no index to answer it, and a custom composite would need
    component definitions this check does not follow."""
    from .search.index import KINDS

    return tuple(t for t in KINDS if t not in ("special", "composite"))


def directory_types() -> tuple[str, ...]:
    """The bases a custom parameter may name: every stored type but SearchParameter itself."""
    return tuple(t for t in registry.RESOURCE_TYPES if t != RESOURCE_TYPE)


# ---------------------------------------------------------------- checks on write


def check_definition(content: dict, logical_id: str | None = None) -> None:
    """Refuse a SearchParameter this server cannot run (422) or that clashes (409)."""
    code = content.get("code") or ""
    if not CODE_PATTERN.match(code):
        _invalid(f"SearchParameter.code '{code[:64]}' is not a valid search parameter code", "code")
    bases = content.get("base") or []
    unknown = [b for b in bases if b not in directory_types()]
    if unknown:
        _invalid(
            f"SearchParameter.base {', '.join(unknown)}: this server stores only "
            f"{', '.join(directory_types())}",
            "base",
        )
    if content.get("type") not in searchable_types():
        _invalid(
            f"SearchParameter.type '{content.get('type')}' is not one this server searches "
            f"({', '.join(searchable_types())})",
            "type",
        )
    if not content.get("expression"):
        _invalid("SearchParameter.expression is required for a custom parameter", "expression")
    if len(content["expression"]) > MAX_EXPRESSION_LENGTH:
        _invalid(
            f"SearchParameter.expression is longer than {MAX_EXPRESSION_LENGTH} characters",
            "expression",
        )
    params = _compile(content)
    if content.get("status") == "active":
        _check_clash(content, params, logical_id)


def _compile(content: dict) -> list[registry.SearchParam]:
    """The definition as SearchParams, its expression compiled and tried on an empty resource."""
    try:
        params = params_of(content, directory_types())
        for param in params:
            for _ in param.engine_elements({"resourceType": param.base}):
                pass
    except Exception as exc:  # fhirpathpy raises bare Exception, ValueError, KeyError, ...
        _invalid(
            f"SearchParameter.expression '{content['expression'][:200]}' cannot be evaluated: "
            f"{str(exc)[:200]}",
            "expression",
        )
    if not params:
        _invalid(
            "SearchParameter.expression selects nothing on its base types (each term must "
            "start with a base type or be a path relative to it)",
            "expression",
        )
    return params


def _check_clash(content: dict, params: list[registry.SearchParam], logical_id: str | None) -> None:
    for param in params:
        if param.name in _builtin[param.base].params or param.name in registry.COMMON_PARAMS:
            raise Conflict(
                f"{param.base} already has a built-in search parameter '{param.name}'",
                expression=["SearchParameter.code"],
            )
        loaded = _stored_active().get((param.base, param.name))
        other = loaded.info if loaded is not None else None
        if other is not None and other.logical_id != logical_id:
            raise Conflict(
                f"{param.base} already has a custom search parameter '{param.name}' "
                f"(SearchParameter/{other.logical_id})",
                expression=["SearchParameter.code"],
            )


def _invalid(message: str, element: str) -> None:
    expression = f"SearchParameter.{element}"
    raise InvalidResource(
        message,
        issues=[
            {
                "severity": "error",
                "code": "invariant" if element == "expression" else "value",
                "diagnostics": message,
                "expression": [expression],
            }
        ],
    )


# ---------------------------------------------------------------- the registry, per worker


def _generation() -> tuple:
    from .models import ResourceVersion
    from .reindex import ReindexJob

    newest = ResourceVersion.objects.filter(resource_type=RESOURCE_TYPE).aggregate(m=Max("id"))
    jobs = ReindexJob.objects.filter(state=ReindexJob.DONE).aggregate(m=Max("finished"))
    return newest["m"], jobs["m"]


def ensure_fresh(*, force: bool = False) -> None:
    """Rebuild this worker's registry when the stored parameters or finished jobs changed.

    Checked at most once per `refresh_seconds()` unless forced.
    """
    now = time.monotonic()
    if not force and now - _state["checked"] < refresh_seconds():
        return
    with _lock:
        try:
            generation = _generation()
            if generation != _state["generation"] or force:
                _rebuild()
                _state["generation"] = generation
        except DatabaseError:
            # The request's own queries will answer 503; this worker keeps the registry it has
            # and tries again at the next interval.
            log.warning("custom search parameters not refreshed: database unavailable")
        _state["checked"] = now


def _rebuild() -> None:
    found = _stored_active(with_ready=True)
    params: dict[str, dict[str, registry.SearchParam]] = {t: {} for t in _builtin}
    for (base, code), custom in found.items():
        params[base][code] = custom.param
    # In place: every module imported the same RESOURCES dict.
    for rtype, rdef in _builtin.items():
        if params[rtype]:
            merged = {**rdef.params, **params[rtype]}
            registry.RESOURCES[rtype] = registry.ResourceDef(rtype, merged, rdef.sort_name_param)
        else:
            registry.RESOURCES[rtype] = rdef
    _active.clear()
    _active.update({key: c.info for key, c in found.items()})


@dataclass(frozen=True)
class _Loaded:
    info: CustomParam
    param: registry.SearchParam


def _stored_active(*, with_ready: bool = False) -> dict[tuple[str, str], _Loaded]:
    """The active custom parameters stored now, by (base, code)."""
    from .models import Resource
    from .reindex import finished_after

    rows = Resource.objects.filter(resource_type=RESOURCE_TYPE, deleted=False)
    found: dict[tuple[str, str], _Loaded] = {}
    for row in rows.only("logical_id", "content", "last_updated").order_by("id"):
        content = row_content(row)
        if content.get("status") != "active":
            continue
        try:
            params = params_of(content, directory_types())
        except Exception:  # noqa: S112 - stored before a change made it invalid; skip, not crash
            continue
        for param in params:
            ready = with_ready and finished_after(param.base, row.last_updated)
            info = CustomParam(row.logical_id, param.base, param.name, ready)
            found.setdefault((param.base, param.name), _Loaded(info, param))
    return found


def row_content(row: Resource) -> dict:
    return json.loads(row.content or "{}")


def reset() -> None:
    """Back to the built-in parameters only (tests, and before a forced rebuild)."""
    with _lock:
        for rtype, rdef in _builtin.items():
            registry.RESOURCES[rtype] = rdef
        _active.clear()
        _state["generation"] = None
        _state["checked"] = 0.0


# ---------------------------------------------------------------- searches


def check_ready(resource_type: str, pairs: list[tuple[str, str]]) -> None:
    """Refuse a search naming a custom parameter whose reindex has not finished.

    A filter on the type itself and an `_include`/`_revinclude` value (`Type:param`) are checked
    exactly; a name inside a chain or `_has` conservatively (any base with a pending parameter
    of that code).
    """
    pending = {key: c for key, c in _active.items() if not c.ready}
    if not pending:
        return
    codes = {code: c for (_, code), c in pending.items()}
    for raw_name, value in pairs:
        head, *rest = re.split(r"[.:]", raw_name)
        if head in ("_include", "_revinclude"):
            source, _, param = value.partition(":")
            hit = pending.get((source, param.partition(":")[0]))
        else:
            hit = pending.get((resource_type, head))
            hit = hit or next((codes[s] for s in rest if s in codes), None)
        if hit is not None:
            raise CustomParamNotReady(
                f"Search parameter '{hit.code}' on {hit.base} "
                f"(SearchParameter/{hit.logical_id}) is not indexed yet: run "
                f"POST [base]/{hit.base}/$reindex and search again once the job is done; "
                "until then a search on it would miss resources stored before it was defined",
                expression=[raw_name],
            )


def is_pending(base: str, code: str) -> bool:
    """True for an active custom parameter whose reindex has not finished (searches refused)."""
    found = _active.get((base, code))
    return found is not None and not found.ready


def active_params() -> dict[tuple[str, str], CustomParam]:
    """This worker's view of the active custom parameters (for status pages and tests)."""
    return dict(_active)


def before_store(resource_type: str, logical_id: str, content: dict) -> None:
    """Storage's hook inside every write: check a SearchParameter, refresh once it commits."""
    if resource_type != RESOURCE_TYPE:
        return
    check_definition(content, logical_id)
    transaction.on_commit(lambda: ensure_fresh(force=True))
