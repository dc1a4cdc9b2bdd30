"""The CapabilityStatement, generated from the routing table and the loaded SearchParameters.

Everything listed comes from what the server runs: interactions from the route table, search
parameters from the registry (with the canonical URL of the definition they were loaded from),
`_include`/`_revinclude` values from the reference parameters. A parameter whose type the search
engine cannot evaluate yet is left out, so a listed parameter is a parameter that works.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.utils import timezone

from directory import customparams, registry
from directory.formats import instant
from directory.profiles import definitions, profile_urls
from directory.search.index import evaluates
from security.oauth import config as oauth

from . import subscription_api
from .routes import interactions

FHIR_VERSION = "4.0.1"
SOFTWARE_NAME = "fhir-directory"
SOFTWARE_VERSION = "0.1.0"

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"

PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net"
PLAN_NET_STATEMENT = f"{PLAN_NET}/CapabilityStatement/plan-net"
PLAN_NET_GUIDE = f"{PLAN_NET}/ImplementationGuide/hl7.fhir.us.davinci-pdex-plan-net"

# `_id` and `_lastUpdated` are answered from the resource row; their definitions are the core
# Resource ones.
COMMON_PARAM_DEFINITIONS = {
    "_id": "http://hl7.org/fhir/SearchParameter/Resource-id",
    "_lastUpdated": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
}
COMMON_PARAM_DOCS = {
    "_id": "Logical id of the resource",
    "_lastUpdated": "When the resource last changed (prefixes eq, ne, lt, le, gt, ge, sa, eb)",
}

# FHIR Bulk Data `$export` (fhirapi/bulk.py), at system level and on every type.
EXPORT_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
EXPORT_DOCUMENTATION = (
    "FHIR Bulk Data $export with Prefer: respond-async; _type, _since, _typeFilter, "
    "_outputFormat=application/fhir+ndjson. Without _type it exports exactly the supported "
    "types the token may read (r); each _typeFilter query needs what the same search needs. "
    "Job status and files answer only the client that started the job, with the same "
    "certificate, key and token checks."
)

# `$import` (fhirapi/bulk_import.py), at system level. The Bulk Data IG (2.0.0) publishes no
# import OperationDefinition (bulk import is still a draft there) and pointing at another
# server's, or at the export one, would misdescribe this one; so the canonical is this
# software's own name for it, and the documentation says what it takes and answers.
IMPORT_DEFINITION = f"urn:{SOFTWARE_NAME}:OperationDefinition:import"
IMPORT_DOCUMENTATION = (
    "Bulk import: POST [base]/$import with Prefer: respond-async and either the resources as an "
    "application/fhir+ndjson body, or a Parameters resource (inputFormat application/fhir+ndjson, "
    "input parts with type and url; only urls under the operator's allowed locations are "
    "fetched). Answers 202 with the status URL [base]/$import/{job} in Content-Location: 202 "
    "with X-Progress while running, then 200 with a manifest (stored counts per type, and an "
    "NDJSON file of OperationOutcomes for refused lines at [base]/$import/{job}/errors); DELETE "
    "cancels. Needs c and u on each type imported; a job answers only the client that started it."
)

# Routed interactions that CapabilityStatement shows as resource flags, not interaction codes.
CONDITIONAL_WRITES = ("conditional-update", "conditional-delete")
# The base's POST route serves both Bundle types.
SYSTEM_CODES = {"transaction": ("batch", "transaction")}

SECURITY_DESCRIPTION = (
    "Every request needs three credentials: mutual TLS with a client certificate issued by a "
    "trust community this directory recognises, the client's API key (X-API-Key header), and "
    "a bearer token whose SMART v2 system scopes (system/<Type>.cruds letters, or the v1 read/"
    "write forms) decide what it may do: s to search, r to read and include, c/u/d to write. "
    "A request needing a scope the token lacks is refused whole with 403. Writing "
    "SearchParameter resources and $reindex need write scopes on SearchParameter."
)


def _security() -> dict:
    """rest.security: mutual TLS, API keys and scopes always; with the built-in authorization
    server on, its SMART endpoints too (SMART App Launch 2.x "Conformance"; UDAP discovery is
    at [base]/.well-known/udap)."""
    security: dict[str, Any] = {
        "cors": False,
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                "text": "Mutual TLS, API key and SMART Backend Services scopes",
            }
        ],
        "description": SECURITY_DESCRIPTION,
    }
    if oauth.enabled():
        security["extension"] = [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "token", "valueUri": oauth.token_endpoint()},
                    {"url": "register", "valueUri": oauth.registration_endpoint()},
                ],
            }
        ]
        security["description"] += (
            " Tokens: client_credentials with private_key_jwt at the token endpoint, bound to the "
            "client certificate (RFC 8705); clients register by UDAP trusted dynamic client "
            "registration. See [base]/.well-known/smart-configuration and [base]/.well-known/udap."
        )
    return security


def _type_interactions() -> list[str]:
    codes = interactions("type") + interactions("instance")
    return [code for code in dict.fromkeys(codes) if code not in CONDITIONAL_WRITES]


def searchable(param: registry.SearchParam) -> bool:
    """True when the search engine evaluates parameters of this type (and, for a custom one,
    once its reindex finished: until then a search on it is refused)."""
    return evaluates(param) and not customparams.is_pending(param.base, param.name)


def _search_params(rdef: registry.ResourceDef) -> list[dict]:
    common = [
        {
            "name": name,
            "definition": COMMON_PARAM_DEFINITIONS[name],
            "type": ptype,
            "documentation": COMMON_PARAM_DOCS[name],
        }
        for name, ptype in registry.COMMON_PARAMS.items()
    ]
    declared = [_search_param(p) for p in rdef.params.values() if searchable(p)]
    return common + declared


def _search_param(param: registry.SearchParam) -> dict:
    entry = {"name": param.name}
    if param.url:
        entry["definition"] = param.url
    entry["type"] = param.type
    if param.description:
        entry["documentation"] = param.description
    return entry


def _includes(rdef: registry.ResourceDef) -> list[str]:
    values = registry.search_includes(rdef.type)
    # `Type:*` follows every reference parameter of the type (see directory/search/includes.py).
    return [*values, f"{rdef.type}:*"] if values else []


def _supported_profiles(resource_type: str) -> list[str]:
    """The profiles of the type that writes are validated against (Plan-Net's, then NDH's)."""
    return [url for url in profile_urls() if definitions()[url].type == resource_type]


def _resource(rdef: registry.ResourceDef) -> dict:
    routed = set(interactions("type"))
    entry: dict[str, Any] = {
        "type": rdef.type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{rdef.type}",
    }
    profiles = _supported_profiles(rdef.type)
    if profiles:
        entry["supportedProfile"] = profiles
    codes = _type_interactions()
    if rdef.type == subscription_api.RESOURCE_TYPE:
        codes = [code for code in codes if code in subscription_api.INTERACTIONS]
    entry |= {
        "interaction": [{"code": code} for code in codes],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": "conditional-update" in routed,
        # One match at a time: several matches are refused with 412.
        "conditionalDelete": "single" if "conditional-delete" in routed else "not-supported",
    }
    includes = _includes(rdef)
    revincludes = registry.search_revincludes(rdef.type)
    # FHIR JSON forbids empty arrays, so absent lists are left out rather than sent empty.
    if includes:
        entry["searchInclude"] = includes
    if revincludes:
        entry["searchRevInclude"] = revincludes
    entry["searchParam"] = _search_params(rdef)
    if rdef.type == subscription_api.RESOURCE_TYPE:
        entry |= subscription_api.capability()
    else:
        entry["operation"] = [_export_operation()]
    return entry


def _export_operation() -> dict:
    return {
        "name": "export",
        "definition": EXPORT_DEFINITION,
        "documentation": EXPORT_DOCUMENTATION,
    }


def _import_operation() -> dict:
    return {
        "name": "import",
        "definition": IMPORT_DEFINITION,
        "documentation": IMPORT_DOCUMENTATION,
    }


def _system_interactions() -> list[dict]:
    # `capabilities` is how a client finds this statement, not a restful-interaction code.
    codes = [
        code
        for routed in interactions("system")
        if routed != "capabilities"
        for code in SYSTEM_CODES.get(routed, (routed,))
    ]
    return [{"code": c} for c in codes]


@cache
def iterate_supported() -> bool:
    """Whether the search engine takes `_include:iterate` (asked of the parser itself)."""
    from directory.errors import FHIRError
    from directory.search.params import parse

    probe = [
        ("_include", "PractitionerRole:organization"),
        ("_include:iterate", "Organization:endpoint"),
    ]
    try:
        parse("PractitionerRole", probe, strict=True)
    except FHIRError:
        return False
    return True


def _documentation() -> str:
    text = f"Result parameters on every type: {', '.join(registry.RESULT_PARAMS)}."
    if iterate_supported():
        text += (
            " `_include:iterate` and `_revinclude:iterate` take every listed searchInclude and "
            "searchRevInclude value."
        )
    return text + (
        " Administrators add search parameters by storing SearchParameter resources and "
        "running $reindex ([base]/$reindex, [base]/{type}/$reindex). " + EXPORT_DOCUMENTATION
    )


def capability_statement(base: str) -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(timezone.now()),
        "publisher": SOFTWARE_NAME,
        "kind": "instance",
        "instantiates": [PLAN_NET_STATEMENT],
        "software": {"name": SOFTWARE_NAME, "version": SOFTWARE_VERSION},
        "implementation": {"description": "Healthcare directory FHIR server", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "implementationGuide": [PLAN_NET_GUIDE],
        "rest": [
            {
                "mode": "server",
                "documentation": _documentation(),
                "security": _security(),
                "resource": [_resource(rdef) for rdef in registry.RESOURCES.values()],
                "interaction": _system_interactions(),
                "operation": [_export_operation(), _import_operation()],
            }
        ],
    }
