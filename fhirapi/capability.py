"""The CapabilityStatement, generated from the routing table and the search registry."""

from __future__ import annotations

from django.utils import timezone

from directory import registry, storage
from security.oauth import config as oauth

from .routes import interactions

FHIR_VERSION = "4.0.1"
SOFTWARE_NAME = "fhir-directory"
SOFTWARE_VERSION = "0.1.0"


OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def _security() -> dict:
    """rest.security when the built-in authorization server is on (SMART App Launch 2.x,
    "Conformance"; UDAP discovery is at [base]/.well-known/udap)."""
    return {
        "cors": False,
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "token", "valueUri": oauth.token_endpoint()},
                    {"url": "register", "valueUri": oauth.registration_endpoint()},
                ],
            }
        ],
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                "text": "SMART Backend Services and UDAP",
            }
        ],
        "description": (
            "Mutual TLS with a trust-community certificate, an API key, and a bearer token. "
            "Tokens: client_credentials with private_key_jwt at the token endpoint, bound to the "
            "client certificate (RFC 8705); clients register by UDAP trusted dynamic client "
            "registration. See [base]/.well-known/smart-configuration and [base]/.well-known/udap."
        ),
    }


COMMON_PARAM_DOCS = {
    "_id": "Logical id of the resource",
    "_lastUpdated": "When the resource last changed (prefixes eq, ne, lt, le, gt, ge, sa, eb)",
}


# Routed interactions that CapabilityStatement shows as resource flags, not interaction codes.
CONDITIONAL_WRITES = ("conditional-update", "conditional-delete")
# The base's POST route serves both Bundle types.
SYSTEM_CODES = {"transaction": ("batch", "transaction")}


def _type_interactions() -> list[str]:
    codes = interactions("type") + interactions("instance")
    return [code for code in dict.fromkeys(codes) if code not in CONDITIONAL_WRITES]


def _search_params(rdef: registry.ResourceDef) -> list[dict]:
    common = [
        {"name": name, "type": ptype, "documentation": COMMON_PARAM_DOCS.get(name, name)}
        for name, ptype in registry.COMMON_PARAMS.items()
    ]
    declared = [
        {"name": p.name, "definition": p.url, "type": p.type, "documentation": p.description}
        for p in rdef.params.values()
    ]
    return common + declared


def _resource(rdef: registry.ResourceDef) -> dict:
    routed = set(interactions("type"))
    entry = {
        "type": rdef.type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{rdef.type}",
        "interaction": [{"code": code} for code in _type_interactions()],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": "conditional-update" in routed,
        # One match at a time: several matches are refused with 412.
        "conditionalDelete": "single" if "conditional-delete" in routed else "not-supported",
        "searchParam": _search_params(rdef),
    }
    includes = registry.search_includes(rdef.type)
    revincludes = registry.search_revincludes(rdef.type)
    # FHIR JSON forbids empty arrays, so absent lists are left out rather than sent empty.
    if includes:
        entry["searchInclude"] = includes
    if revincludes:
        entry["searchRevInclude"] = revincludes
    return entry


def _system_interactions() -> list[dict]:
    # `capabilities` is how a client finds this statement, not a restful-interaction code.
    codes = [
        code
        for routed in interactions("system")
        if routed != "capabilities"
        for code in SYSTEM_CODES.get(routed, (routed,))
    ]
    return [{"code": c} for c in codes]


def capability_statement(base: str) -> dict:
    result_params = ", ".join(registry.RESULT_PARAMS)
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": storage.instant(timezone.now()),
        "publisher": SOFTWARE_NAME,
        "kind": "instance",
        "software": {"name": SOFTWARE_NAME, "version": SOFTWARE_VERSION},
        "implementation": {"description": "Healthcare directory FHIR server", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": f"Result parameters on every type: {result_params}",
                "resource": [_resource(rdef) for rdef in registry.RESOURCES.values()],
                "interaction": _system_interactions(),
            }
        ],
    }
    if oauth.enabled():
        statement["rest"][0]["security"] = _security()
    return statement
