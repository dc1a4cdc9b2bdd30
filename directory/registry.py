"""The resource types and search parameters this server supports; the single source of truth.

The parameters are SearchParameter resources (FHIR core, Plan-Net, NDH) loaded by
`directory.searchparams`; indexing, search and the CapabilityStatement are all generated from
them, so a parameter that is listed is a parameter that works.
"""

from __future__ import annotations

# The FHIR id datatype lives with the reference grammar; re-exported for existing imports.
from .references import ID_PATTERN, ID_REGEX
from .searchparams import ResourceDef, SearchParam, build_resources, read_bundles

__all__ = ["ID_PATTERN", "ID_REGEX", "ResourceDef", "SearchParam"]

# The resource types this server stores, in the order the CapabilityStatement lists them.
SUPPORTED_TYPES = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Endpoint",
    "HealthcareService",
    "OrganizationAffiliation",
    "InsurancePlan",
    "Group",
)

# Custom search parameters (directory/customparams.py): administrators store SearchParameter
# resources, searched by the core SearchParameter parameters; not a directory type. Clients
# store Subscription resources (subscriptions/), each seen only by the client that owns it.
ADMIN_TYPES = ("SearchParameter", "Subscription")

# Types each client sees only its own of: left out of system history (storage) and decided by
# owner in fhirapi/authorization.py.
OWNED_TYPES = ("Subscription",)

RESOURCES: dict[str, ResourceDef] = build_resources(read_bundles(), SUPPORTED_TYPES + ADMIN_TYPES)

RESOURCE_TYPES = tuple(RESOURCES)

# Types every permitted client reads alike: what bulk export and import cover. An owned type is
# its client's alone and created one at a time through the API, which checks it (a Subscription
# imported or exported in bulk would bypass its endpoint checks or show other clients' channels).
SHARED_TYPES = tuple(t for t in RESOURCE_TYPES if t not in OWNED_TYPES)

# Parameters every resource type supports; evaluated on the resource row itself, not an index table.
COMMON_PARAMS = {
    "_id": "token",
    "_lastUpdated": "date",
}

# Search result parameters (FHIR "search control" parameters) that the search engine handles.
RESULT_PARAMS = ("_count", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude")

SORT_KEYS = ("_lastUpdated", "name", "_id")


def resource_def(resource_type: str) -> ResourceDef | None:
    return RESOURCES.get(resource_type)


def search_includes(resource_type: str) -> list[str]:
    """`_include` values a type supports, e.g. `PractitionerRole:practitioner`."""
    return [f"{resource_type}:{p.name}" for p in RESOURCES[resource_type].reference_params]


def search_revincludes(resource_type: str) -> list[str]:
    """`_revinclude` values that can return resources pointing at `resource_type`."""
    found = []
    for rdef in RESOURCES.values():
        for param in rdef.reference_params:
            if resource_type in param.targets:
                found.append(f"{rdef.type}:{param.name}")
    return found
