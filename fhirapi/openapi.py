"""The OpenAPI 3.1 description of the FHIR API, generated from the routing table and the registry.

The CapabilityStatement stays the FHIR-native description; this one serves generic HTTP tooling
(client generators, API gateways, fuzzers). Paths and methods come from routes.ROUTES and
routes.PATTERNS, resource types and search parameters from directory.registry, and the security
schemes from the same settings the security checks read, so the document describes exactly what
is served.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.views import APIView

from directory import registry
from directory.search import filters
from directory.search.index.composite import components as composite_components
from directory.search.params import _SUMMARY_MODES, _TOTAL_MODES

from . import bulk_import, capability, subscription_api
from .links import base_url
from .parsers import FORM_MEDIA_TYPE, JSON_MEDIA_TYPES
from .prefer import HANDLING_VALUES, RETURN_VALUES
from .renderers import FHIR_JSON
from .routes import PATTERNS, ROUTES, Route

OPENAPI_VERSION = "3.1.0"
OPENAPI_MEDIA_TYPE = "application/json"
CERT_HEADER_NOTE = (
    "The TLS terminator verifies the client certificate and passes it to the server, which "
    "verifies it again against the trusted communities."
)

# A named group of a URL pattern becomes an OpenAPI path parameter of the same name.
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
_RESOURCE_TYPE = "{resource_type}"
_COUNT_SCHEMA = {"type": "integer", "minimum": 0}
_PREFER_VALUES = [f"return={v}" for v in RETURN_VALUES.values()] + [
    f"handling={v}" for v in HANDLING_VALUES.values()
]


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def path_template(pattern_key: str) -> str:
    """`^(?P<resource_type>...)/(?P<logical_id>...)$` -> `/{resource_type}/{logical_id}`."""
    return "/" + _GROUP.sub(lambda m: "{" + m["name"] + "}", PATTERNS[pattern_key].strip("^$"))


def _fhir_json(schema: dict) -> dict:
    return {FHIR_JSON: {"schema": schema}}


# ---------------------------------------------------------------- parameters


def _query(name: str, schema: dict, description: str, **extra: Any) -> dict:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _header(name: str, description: str, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "header",
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path_parameters(path: str) -> list[dict]:
    names = re.findall(r"{(\w+)}", path)
    return [_ref("parameters", name) for name in names]


# Example values by element kind, else by parameter type; a reference's come from its targets.
_EXAMPLES = {
    "Identifier": ["http://hl7.org/fhir/sid/us-npi|1234567893"],
    "boolean": ["true"],
    "code": ["active"],
}
_TYPE_EXAMPLES = {
    "string": ["smith"],
    "date": ["ge2024-01-01"],
    "uri": [
        "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Organization"
    ],
    "composite": ["system|code$system|code"],
    "special": ["42.256|-83.694|10|km"],
}


# Special parameters each have their own syntax: `contains` takes a point without a distance.
_SPECIAL_EXAMPLES = {"contains": ["42.256|-83.694"]}


def _examples(param: registry.SearchParam) -> list[str]:
    """Example values the parameter accepts; a composite's follow its components' types."""
    if param.type == "reference":
        return [f"{target}/example" for target in param.targets]
    if param.type == "special" and param.name in _SPECIAL_EXAMPLES:
        return _SPECIAL_EXAMPLES[param.name]
    parts = composite_components(param.base, param.name) if param.type == "composite" else None
    if parts:
        return ["$".join(_component_example(part.param) for part in parts)]
    return _EXAMPLES.get(param.kind) or _TYPE_EXAMPLES.get(param.type, ["system|code"])


def _component_example(param: registry.SearchParam) -> str:
    return _examples(param)[0]


def _filter_parameter(param: registry.SearchParam) -> dict:
    examples = _examples(param)
    modifiers = [f":{m}" for m in sorted(filters.supported_modifiers(param)) if m[0].islower()]
    if param.type == "reference":
        modifiers.append(":<target type>")
    description = f"{param.description} ({param.type}; modifiers {', '.join(modifiers) or 'none'})"
    return _query(param.name, {"type": "string", "examples": examples}, description)


def _common_filters() -> list[dict]:
    return [
        _query(name, {"type": "string"}, f"{capability.COMMON_PARAM_DOCS[name]} ({ptype})")
        for name, ptype in registry.COMMON_PARAMS.items()
    ]


def _includes(name: str, values: list[str], description: str) -> list[dict]:
    if not values:
        return []
    schema = {"type": "array", "items": {"type": "string", "enum": values}}
    return [_query(name, schema, description, style="form", explode=True)]


def _result_parameters(resource_type: str) -> list[dict]:
    sort_keys = [key for key in registry.SORT_KEYS if key != "name"]
    if registry.RESOURCES[resource_type].sort_name_param:
        sort_keys.append("name")
    sorts = sort_keys + [f"-{key}" for key in sort_keys]
    return [
        _ref("parameters", "_count"),
        _query("_sort", {"type": "string", "enum": sorts}, "Sort key; a leading '-' descends"),
        _query("_total", {"type": "string", "enum": sorted(_TOTAL_MODES)}, "How to count"),
        _query("_summary", {"type": "string", "enum": sorted(_SUMMARY_MODES)}, "Summary form"),
        _query("_elements", {"type": "string"}, "Comma-separated element names to return"),
        *_includes(
            "_include",
            registry.search_includes(resource_type),
            "Also return the resources these references point at (`:iterate` follows them on)",
        ),
        *_includes(
            "_revinclude",
            registry.search_revincludes(resource_type),
            "Also return the resources that point at the matches",
        ),
        _ref("parameters", "_cursor"),
    ]


def search_parameters(resource_type: str) -> list[dict]:
    """Every search parameter of a type: filters from the registry, then result parameters."""
    declared = registry.RESOURCES[resource_type].params.values()
    return (
        _common_filters()
        + [_filter_parameter(p) for p in declared]
        + (_result_parameters(resource_type))
    )


def _form_body(resource_type: str) -> dict:
    """POST _search takes the same parameters as a form body (as schema properties, not refs)."""
    shared = _shared_parameters()
    properties = {}
    for parameter in search_parameters(resource_type):
        if "$ref" in parameter:
            parameter = shared[parameter["$ref"].rsplit("/", 1)[1]]
        properties[parameter["name"]] = parameter["schema"]
    return {
        "required": False,
        "content": {FORM_MEDIA_TYPE: {"schema": {"type": "object", "properties": properties}}},
    }


def _shared_parameters() -> dict:
    """components.parameters: path segments and parameters several operations share."""
    return {
        "logical_id": {
            "name": "logical_id",
            "in": "path",
            "required": True,
            "description": "Logical id of the resource",
            "schema": {
                "type": "string",
                "pattern": f"^{registry.ID_REGEX}$",
                "examples": ["example"],
            },
        },
        "version_id": {
            "name": "version_id",
            "in": "path",
            "required": True,
            "description": "Version id, as in meta.versionId and the ETag",
            "schema": {"type": "string", "pattern": "^[0-9]+$", "examples": ["1"]},
        },
        "_format": _query(
            "_format",
            {"type": "string", "enum": ["json", "application/fhir+json", "application/json"]},
            "Response format; this server speaks FHIR JSON only",
        ),
        "_count": _query("_count", _COUNT_SCHEMA, f"Page size, at most {settings.FHIR_MAX_COUNT}"),
        "_cursor": _query(
            "_cursor", {"type": "string"}, "Opaque page cursor from a Bundle's next/previous link"
        ),
        "_since": _query(
            "_since",
            {"type": "string", "format": "date-time"},
            "Only versions changed at or after this instant",
        ),
        "Prefer": _header(
            "Prefer",
            "RFC 7240 preferences: return=minimal|representation|OperationOutcome, "
            "handling=strict|lenient (strict by default: unknown search parameters are a 400)",
            {"type": "string", "examples": _PREFER_VALUES},
        ),
        "If-Match": _header(
            "If-Match",
            "Update only if the current version has this ETag (optimistic locking)",
            {"type": "string", "examples": ['W/"1"']},
        ),
        "If-None-Exist": _header(
            "If-None-Exist",
            "Conditional create: search criteria; a single match is returned instead of created",
            {
                "type": "string",
                "examples": ["identifier=http://hl7.org/fhir/sid/us-npi|1234567893"],
            },
        ),
    }


# ---------------------------------------------------------------- responses


def _response(description: str, schema: dict | None = None, headers: Sequence[str] = ()) -> dict:
    response: dict = {"description": description}
    if schema is not None:
        response["content"] = _fhir_json(schema)
    if headers:
        response["headers"] = {name: _ref("headers", name) for name in headers}
    return response


# Errors every API operation can answer: bad input, credentials, scope, negotiation, throttling,
# and fail-closed trust checks (e.g. a CRL that cannot be refreshed).
_COMMON_ERRORS = ("400", "401", "403", "404", "406", "429", "503")
_ERRORS_BY_INTERACTION = {
    "read": ("410",),
    "vread": ("410",),
    "create": ("409", "412", "413", "415", "422"),
    "update": ("409", "412", "413", "415", "422"),
    "delete": ("409",),
    "search-type": ("413", "415"),
}
_ERROR_TEXT = {
    "400": "Bad request: invalid parameter, id or body",
    "401": "Missing or invalid credentials",
    "403": "Certificate, key or token not accepted, or the token's scopes fall short",
    "404": "Unknown resource type, id or version",
    "406": "Only FHIR JSON can be returned",
    "409": "Conflict: version mismatch, still referenced, or an identifier another resource holds",
    "410": "The resource (version) was deleted",
    "412": "Precondition failed: If-Match or If-None-Exist",
    "413": "Request body too large",
    "415": "Unsupported request media type",
    "422": "The resource is not valid FHIR R4, or an NPI fails its check digit",
    "429": "Too many requests",
    "503": "Temporarily unable to verify trust; try again later",
}
_VERSION_HEADERS = ["ETag", "Last-Modified"]
_WRITE_HEADERS = ["Location", *_VERSION_HEADERS]


def _resource_schema(resource_type: str) -> dict:
    return _ref("schemas", resource_type)


def _success(route: Route, resource_type: str) -> dict:
    resource = _resource_schema(resource_type) if resource_type else None
    written = {"anyOf": [resource, _ref("schemas", "OperationOutcome")]} if resource else None
    bundle = _ref("schemas", "Bundle")
    table = {
        "capabilities": {"200": _response("CapabilityStatement", _ref("schemas", "Resource"))},
        "read": {"200": _response("Current version", resource, _VERSION_HEADERS)},
        "vread": {"200": _response("That version", resource, _VERSION_HEADERS)},
        "search-type": {"200": _response("Search results (searchset Bundle)", bundle)},
        "create": {
            "201": _response("Created; body as Prefer asks", written, _WRITE_HEADERS),
            "200": _response("If-None-Exist matched one resource", written, _WRITE_HEADERS),
        },
        "update": {
            "200": _response("Updated; body as Prefer asks", written, _WRITE_HEADERS),
            "201": _response("Created with the client's id", written, _WRITE_HEADERS),
        },
        "delete": {"204": _response("Deleted (or already absent)")},
    }
    history = {"200": _response("Versions, newest first (history Bundle)", bundle)}
    return table.get(route.interaction, history)


def _responses(route: Route, resource_type: str) -> dict:
    responses = _success(route, resource_type)
    for status in _COMMON_ERRORS + _ERRORS_BY_INTERACTION.get(route.interaction, ()):
        responses[status] = _ref("responses", f"Error{status}")
    return responses


# ---------------------------------------------------------------- operations


def _operation_parameters(route: Route, resource_type: str, path: str) -> list[dict]:
    parameters = [*_path_parameters(path), _ref("parameters", "_format")]
    if route.interaction == "search-type" and route.method == "GET":
        parameters += search_parameters(resource_type)
    if route.interaction == "search-type":
        parameters.append(_ref("parameters", "Prefer"))
    if route.interaction.startswith("history"):
        parameters += [_ref("parameters", name) for name in ("_since", "_count", "_cursor")]
    if route.interaction == "create" and _offered(resource_type, "conditional-create"):
        parameters.append(_ref("parameters", "If-None-Exist"))
    if route.interaction == "create":
        parameters.append(_ref("parameters", "Prefer"))
    if route.interaction == "update":
        parameters += [_ref("parameters", "If-Match"), _ref("parameters", "Prefer")]
    return parameters


def _resource_body(route: Route, resource_type: str) -> dict:
    content = {media: {"schema": _resource_schema(resource_type)} for media in JSON_MEDIA_TYPES}
    description = f"A FHIR R4 {resource_type}, validated against R4 and its required bindings"
    if route.interaction == "update":
        description += "; its id must be the id in the URL"
    return {"description": description, "required": True, "content": content}


def operation(route: Route, resource_type: str, path: str) -> dict:
    """The Operation Object for one route, at one resource type ("" at system level)."""
    name = "-".join(filter(None, [route.interaction, route.method.lower(), resource_type]))
    result = {
        "operationId": name,
        "summary": " ".join(filter(None, [route.interaction, resource_type])),
        "tags": [resource_type or "System"],
        "parameters": _operation_parameters(route, resource_type, path),
        "responses": _responses(route, resource_type),
        "security": _security(route),
    }
    if route.interaction in ("create", "update"):
        result["requestBody"] = _resource_body(route, resource_type)
    if route.interaction == "search-type" and route.method == "POST":
        result["requestBody"] = _form_body(resource_type)
    return result


def _offered(resource_type: str, interaction: str) -> bool:
    """Whether a routed interaction is offered on a type: on Subscription only those the
    decision point allows (the others are refused with 403, so they are not described)."""
    if resource_type != subscription_api.RESOURCE_TYPE:
        return True
    return interaction in subscription_api.INTERACTIONS


def _paths_for(route: Route) -> list[tuple[str, str]]:
    """(path, resource type) for a route: one path per type that offers it, at type level."""
    template = path_template(route.pattern)
    if _RESOURCE_TYPE not in template:
        return [(template, "")]
    types = [t for t in registry.RESOURCE_TYPES if _offered(t, route.interaction)]
    return [(template.replace(_RESOURCE_TYPE, t), t) for t in types]


def paths() -> dict:
    """The Paths Object: every route, with the resource type made concrete (own parameters),
    then the Subscription operations and the Bulk Data export and import operations."""
    result: dict[str, dict] = {}
    for route in ROUTES:
        for path, resource_type in _paths_for(route):
            op = operation(route, resource_type, path)
            result.setdefault(path, {})[route.method.lower()] = op
    return result | subscription_paths() | export_paths() | import_paths()


# ---------------------------------------------------------------- Subscription operations


def subscription_paths() -> dict:
    """`Subscription/{id}/$status`, `$events` and `Subscription/$topic-list`
    (fhirapi/subscription_ops.py)."""
    schemas = {"status": "Bundle", "events": "Bundle", "topic-list": "Parameters"}
    errors = ("400", "401", "403", "404", "406", "429", "503")
    result = {}
    for name, definition, path, summary in subscription_api.OPERATIONS:
        success = _response(summary, _ref("schemas", schemas[name]))
        result[path] = {
            "get": {
                "operationId": f"subscription-{name}",
                "summary": summary,
                "tags": [subscription_api.RESOURCE_TYPE],
                "externalDocs": {"url": definition},
                "parameters": [
                    *_path_parameters(path),
                    *_query_parameters(subscription_api.QUERY_PARAMETERS.get(name, ())),
                    _ref("parameters", "_format"),
                ],
                "responses": {"200": success} | {s: _ref("responses", f"Error{s}") for s in errors},
                "security": api_security(),
            }
        }
    return result


def _query_parameters(declared: Iterable[tuple[str, str, str]]) -> list[dict]:
    return [
        {"name": name, "in": "query", "description": text, "schema": {"type": kind}}
        for name, text, kind in declared
    ]


# ---------------------------------------------------------------- Bulk Data $export

_EXPORT_JOB = {
    "name": "job",
    "in": "path",
    "required": True,
    "description": "The job's key, from the kick-off's Content-Location",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{20,64}$"},
}


_BULK_ERRORS = ("401", "403", "404", "406", "429", "503")


def _export_operation(
    name: str, summary: str, parameters: list, responses: dict, errors: tuple[str, ...] = ()
) -> dict:
    refused = {s: _ref("responses", f"Error{s}") for s in _BULK_ERRORS + errors}
    return {
        "operationId": name,
        "summary": summary,
        "tags": ["Bulk Data"],
        "parameters": parameters,
        "responses": responses | refused,
        "security": api_security(),
    }


def export_paths() -> dict:
    """`$export` (system level; `[base]/{type}/$export` takes the same parameters), its status
    URL and its files (fhirapi/bulk.py)."""
    string = {"type": "string"}
    accepted = {
        "description": "Accepted; poll the Content-Location",
        "headers": {"Content-Location": {"description": "The status URL", "schema": string}},
        "content": _fhir_json(_ref("schemas", "OperationOutcome")),
    }
    kick_off = [
        _header("Prefer", "Must hold respond-async", {"type": "string", "enum": ["respond-async"]})
        | {"required": True},
        _query("_type", string, "Comma-separated types (default: every type the token reads)"),
        _ref("parameters", "_since"),
        _query("_typeFilter", string, "Type?search-query; commas separate alternatives"),
        _query(
            "_outputFormat",
            {"type": "string", "enum": ["application/fhir+ndjson", "application/ndjson", "ndjson"]},
            "NDJSON only",
        ),
    ]
    manifest = {
        "description": "Done: the manifest",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    running = {
        "description": "Still running",
        "headers": {
            "X-Progress": {"description": "state: done of total resources", "schema": string},
            "Retry-After": _ref("headers", "Retry-After"),
        },
    }
    failed = _response("The job failed", _ref("schemas", "OperationOutcome"))
    cancelled = _response("Cancelled; the files are deleted", _ref("schemas", "OperationOutcome"))
    ndjson = {
        "description": "One resource a line",
        "content": {"application/fhir+ndjson": {"schema": string}},
    }
    file_type = {
        "name": "type",
        "in": "path",
        "required": True,
        "description": "A type listed in the manifest",
        "schema": {"type": "string", "enum": list(registry.RESOURCE_TYPES)},
    }
    bad = {"400": _ref("responses", "Error400")}
    return {
        "/$export": {
            "get": _export_operation(
                "export", "Start a bulk export", kick_off, {"202": accepted} | bad
            )
        },
        "/$export-status/{job}": {
            "get": _export_operation(
                "export-status",
                "Poll an export",
                [_EXPORT_JOB],
                {"200": manifest, "202": running, "500": failed},
            ),
            "delete": _export_operation(
                "export-cancel", "Cancel an export", [_EXPORT_JOB], {"202": cancelled}
            ),
        },
        "/$export-file/{job}/{type}.ndjson": {
            "get": _export_operation(
                "export-file", "Download one file", [_EXPORT_JOB, file_type], {"200": ndjson}
            )
        },
    }


# ---------------------------------------------------------------- Bulk import $import

_IMPORT_JOB = _EXPORT_JOB | {"schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}


def _import_body() -> dict:
    ndjson = {"type": "string", "description": "One FHIR R4 resource in JSON a line"}
    content = {media: {"schema": ndjson} for media in bulk_import.NDJSON_MEDIA_TYPES}
    content |= {media: {"schema": _ref("schemas", "Parameters")} for media in JSON_MEDIA_TYPES}
    return {
        "description": f"The resources as NDJSON (at most {settings.FHIR_IMPORT_MAX_BYTES} "
        "bytes), or a Parameters resource: inputFormat application/fhir+ndjson and input parts "
        "(type, url), fetched only from locations the operator allowed",
        "required": True,
        "content": content,
    }


def import_paths() -> dict:
    """`$import`, its status URL and its error file (fhirapi/bulk_import.py)."""
    string = {"type": "string"}
    outcome = _ref("schemas", "OperationOutcome")
    accepted = {
        "description": "Accepted; poll the Content-Location",
        "headers": {"Content-Location": {"description": "The status URL", "schema": string}},
        "content": _fhir_json(outcome),
    }
    prefer = _header(
        "Prefer", "Must hold respond-async", {"type": "string", "enum": ["respond-async"]}
    ) | {"required": True}
    manifest = {
        "description": "Done: the manifest (stored counts per type; refused lines under error)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    running = {
        "description": "Still running",
        "headers": {
            "X-Progress": {
                "description": "lines done of total, resources stored",
                "schema": string,
            },
            "Retry-After": _ref("headers", "Retry-After"),
        },
        "content": _fhir_json(outcome),
    }
    failed = _response("The job failed; batches committed before stay stored", outcome)
    cancelled = _response("Cancelled; batches already committed stay stored", outcome)
    errors = {
        "description": "One OperationOutcome a line, naming each refused line",
        "content": {bulk_import.NDJSON: {"schema": string}},
    }
    kick_off = _export_operation(
        "import", "Start a bulk import", [prefer], {"202": accepted}, ("400", "413", "415")
    )
    kick_off["requestBody"] = _import_body()
    return {
        "/$import": {"post": kick_off},
        "/$import/{job}": {
            "get": _export_operation(
                "import-status",
                "Poll an import",
                [_IMPORT_JOB],
                {"200": manifest, "202": running, "500": failed},
            ),
            "delete": _export_operation(
                "import-cancel", "Cancel an import", [_IMPORT_JOB], {"202": cancelled}
            ),
        },
        "/$import/{job}/errors": {
            "get": _export_operation(
                "import-errors", "Download the refused lines", [_IMPORT_JOB], {"200": errors}
            )
        },
    }


def _parameters_schema() -> dict:
    part = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"const": "Parameters"},
            "parameter": {"type": "array", "items": part},
        },
    }


# ---------------------------------------------------------------- security


def security_schemes() -> dict:
    return {
        "clientCertificate": {
            "type": "mutualTLS",
            "description": f"A client certificate of a registered community. {CERT_HEADER_NOTE}",
        },
        "apiKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": settings.SECURITY_API_KEY_HEADER,
            "description": "The API key issued to the client the certificate belongs to",
        },
        "apiKeyQuery": {
            "type": "apiKey",
            "in": "query",
            "name": settings.SECURITY_API_KEY_QUERY_PARAM,
            "description": "The same API key as a query parameter, for clients that cannot "
            "set headers (the header is preferred: URLs end up in logs, which are redacted)",
        },
        "bearerToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT from a configured issuer; its scopes (SMART system/… or NHS "
            "style) must cover the interaction and every resource type it reads or writes",
        },
    }


def _certificate() -> list[dict]:
    return [{"clientCertificate": []}] if settings.SECURITY_REQUIRE_CLIENT_CERT else [{}]


def api_security() -> list[dict]:
    """Alternatives for data interactions: certificate AND (key header OR query) AND token."""
    keys: list[dict[str, list[str]]] = [{"apiKeyHeader": []}, {"apiKeyQuery": []}]
    token: dict[str, list[str]] = {"bearerToken": []}
    tokens = [token] if settings.SECURITY_REQUIRE_BEARER else [token, {}]
    return [
        {**cert, **key, **token}
        for cert, key, token in itertools.product(_certificate(), keys, tokens)
    ]


def _security(route: Route) -> list[dict]:
    # The CapabilityStatement is for discovery: transport checks only, no key or token.
    return _certificate() if route.interaction == "capabilities" else api_security()


# ---------------------------------------------------------------- components


def _resource_schemas() -> dict:
    schemas = {
        "Resource": {
            "type": "object",
            "description": "Any FHIR R4 resource in JSON; validated against R4 by the server",
            "required": ["resourceType"],
            "properties": {
                "resourceType": {"type": "string"},
                "id": {"type": "string", "pattern": f"^{registry.ID_REGEX}$"},
                "meta": {"type": "object"},
            },
            "additionalProperties": True,
        }
    }
    for resource_type in registry.RESOURCE_TYPES:
        schemas[resource_type] = {
            "allOf": [_ref("schemas", "Resource")],
            "properties": {"resourceType": {"const": resource_type}},
            "description": f"A FHIR R4 {resource_type}",
            "externalDocs": {"url": f"https://hl7.org/fhir/R4/{resource_type.lower()}.html"},
        }
    return schemas


def _outcome_schema() -> dict:
    issue = {
        "type": "object",
        "required": ["severity", "code"],
        "properties": {
            "severity": {"enum": ["fatal", "error", "warning", "information"]},
            "code": {"type": "string"},
            "diagnostics": {"type": "string"},
            "details": {"type": "object"},
            "expression": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"const": "OperationOutcome"},
            "issue": {"type": "array", "minItems": 1, "items": issue},
        },
    }


def _bundle_schema() -> dict:
    string = {"type": "string"}
    link = {"type": "object", "properties": {"relation": string, "url": string}}
    entry = {
        "type": "object",
        "properties": {
            "fullUrl": {"type": "string"},
            "resource": _ref("schemas", "Resource"),
            "search": {"type": "object"},
            "request": {"type": "object"},
            "response": {"type": "object"},
        },
    }
    return {
        "type": "object",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"const": "Bundle"},
            "type": {"enum": ["searchset", "history"]},
            "total": {"type": "integer", "minimum": 0},
            "link": {"type": "array", "items": link},
            "entry": {"type": "array", "items": entry},
        },
    }


def _headers() -> dict:
    string = {"schema": {"type": "string"}}
    return {
        "ETag": {"description": 'Weak ETag of the version, W/"<versionId>"', **string},
        "Last-Modified": {"description": "When the version was written", **string},
        "Location": {"description": "URL of the version written", **string},
        "Retry-After": {"description": "Seconds to wait before retrying", **string},
    }


def _error_responses() -> dict:
    responses = {}
    for status, text in _ERROR_TEXT.items():
        responses[f"Error{status}"] = _response(text, _ref("schemas", "OperationOutcome"))
    responses["Error429"]["headers"] = {"Retry-After": _ref("headers", "Retry-After")}
    return responses


def components() -> dict:
    return {
        "schemas": {
            **_resource_schemas(),
            "OperationOutcome": _outcome_schema(),
            "Bundle": _bundle_schema(),
            "Parameters": _parameters_schema(),
        },
        "parameters": _shared_parameters(),
        "headers": _headers(),
        "responses": _error_responses(),
        "securitySchemes": security_schemes(),
    }


def openapi_document(base: str) -> dict:
    """The whole OpenAPI document, with `base` (the FHIR base URL) as its server."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Healthcare directory FHIR R4 API",
            "version": capability.SOFTWARE_VERSION,
            "description": "FHIR R4 REST API of the healthcare directory. "
            f"The FHIR-native description is {base}/metadata (CapabilityStatement). "
            "Every error is an OperationOutcome.",
        },
        "servers": [{"url": base}],
        "paths": paths(),
        "components": components(),
        "security": api_security(),
    }


class OpenAPIView(APIView):
    """GET /fhir/openapi.json. Errors (405, 406) are OperationOutcomes like the rest of /fhir."""

    # Not DRF's default list: its OPTIONS answers with the view's own metadata, not FHIR.
    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        document = openapi_document(base_url(request))
        # Returned as is, not rendered: the document is plain JSON, not a FHIR resource.
        return HttpResponse(json.dumps(document), content_type=OPENAPI_MEDIA_TYPE)
