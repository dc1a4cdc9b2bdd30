"""The resource types and search parameters this server supports; the single source of truth.

Indexing, search and the CapabilityStatement are all generated from these declarations, so a
parameter that is listed is a parameter that works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The FHIR id datatype: 1 to 64 letters, digits, '-' and '.'.
ID_REGEX = r"[A-Za-z0-9\-.]{1,64}"
ID_PATTERN = re.compile(rf"^{ID_REGEX}$")

# How a value is read out of the element a path points at.
STRING_KINDS = {"string", "HumanName", "Address"}
TOKEN_KINDS = {"Identifier", "CodeableConcept", "Coding", "code", "boolean"}


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # "string" | "token" | "reference"
    paths: tuple[str, ...]  # dotted element paths below the resource
    kind: str  # element kind, see STRING_KINDS / TOKEN_KINDS, or "Reference"
    description: str
    targets: tuple[str, ...] = ()  # reference targets

    @property
    def expression(self) -> str:
        return " | ".join(self.paths_with_type())

    def paths_with_type(self) -> list[str]:
        return list(self.paths)


@dataclass(frozen=True)
class ResourceDef:
    type: str
    params: dict[str, SearchParam] = field(default_factory=dict)
    sort_name_param: str | None = None  # which string param gives the `_sort=name` key

    @property
    def reference_params(self) -> list[SearchParam]:
        return [p for p in self.params.values() if p.type == "reference"]


def _string(name, paths, kind, description):
    return SearchParam(name, "string", tuple(paths), kind, description)


def _token(name, paths, kind, description):
    return SearchParam(name, "token", tuple(paths), kind, description)


def _reference(name, paths, targets, description):
    return SearchParam(name, "reference", tuple(paths), "Reference", description, tuple(targets))


def _identifier(rtype):
    return _token(
        "identifier",
        [f"{rtype}.identifier"],
        "Identifier",
        "Identifier (system|value), e.g. an NPI",
    )


def _active(rtype):
    return _token("active", [f"{rtype}.active"], "boolean", "Whether the record is in active use")


def _address_params(rtype):
    base = f"{rtype}.address"
    return [
        _string("address", [base], "Address", "Any part of the address (line, city, state, ...)"),
        _string("address-city", [f"{base}.city"], "string", "City in the address"),
        _string("address-state", [f"{base}.state"], "string", "State in the address"),
        _string("address-postalcode", [f"{base}.postalCode"], "string", "Postal code"),
        _string("address-country", [f"{base}.country"], "string", "Country in the address"),
    ]


def _define(rtype, params, sort_name_param=None) -> ResourceDef:
    return ResourceDef(rtype, {p.name: p for p in params}, sort_name_param)


RESOURCES: dict[str, ResourceDef] = {
    d.type: d
    for d in [
        _define(
            "Organization",
            [
                _string(
                    "name",
                    ["Organization.name", "Organization.alias"],
                    "string",
                    "Name or alias of the organization",
                ),
                *_address_params("Organization"),
                _identifier("Organization"),
                _token("type", ["Organization.type"], "CodeableConcept", "Kind of organization"),
                _active("Organization"),
                _reference(
                    "partof",
                    ["Organization.partOf"],
                    ["Organization"],
                    "The organization this one is part of",
                ),
                _reference(
                    "endpoint",
                    ["Organization.endpoint"],
                    ["Endpoint"],
                    "Technical endpoints of the organization",
                ),
            ],
            sort_name_param="name",
        ),
        _define(
            "Practitioner",
            [
                _string("name", ["Practitioner.name"], "HumanName", "Any part of the name"),
                _string("family", ["Practitioner.name.family"], "string", "Family name"),
                _string("given", ["Practitioner.name.given"], "string", "Given name"),
                _identifier("Practitioner"),
                _active("Practitioner"),
            ],
            sort_name_param="name",
        ),
        _define(
            "PractitionerRole",
            [
                _reference(
                    "practitioner",
                    ["PractitionerRole.practitioner"],
                    ["Practitioner"],
                    "The practitioner in the role",
                ),
                _reference(
                    "organization",
                    ["PractitionerRole.organization"],
                    ["Organization"],
                    "The organization where the role is offered",
                ),
                _reference(
                    "location",
                    ["PractitionerRole.location"],
                    ["Location"],
                    "Locations where the role is performed",
                ),
                _reference(
                    "endpoint",
                    ["PractitionerRole.endpoint"],
                    ["Endpoint"],
                    "Technical endpoints for the role",
                ),
                _token("role", ["PractitionerRole.code"], "CodeableConcept", "The role performed"),
                _token(
                    "specialty",
                    ["PractitionerRole.specialty"],
                    "CodeableConcept",
                    "Specialty of the practitioner in this role",
                ),
                _identifier("PractitionerRole"),
                _active("PractitionerRole"),
            ],
        ),
        _define(
            "Location",
            [
                _string(
                    "name",
                    ["Location.name", "Location.alias"],
                    "string",
                    "Name or alias of the location",
                ),
                *_address_params("Location"),
                _identifier("Location"),
                _reference(
                    "organization",
                    ["Location.managingOrganization"],
                    ["Organization"],
                    "Organization responsible for the location",
                ),
                _token("type", ["Location.type"], "CodeableConcept", "Kind of location"),
                _token("status", ["Location.status"], "code", "active | suspended | inactive"),
                _reference(
                    "partof", ["Location.partOf"], ["Location"], "The location this one is part of"
                ),
                _reference(
                    "endpoint",
                    ["Location.endpoint"],
                    ["Endpoint"],
                    "Technical endpoints of the location",
                ),
                # HOOK(near): R4 core Location-near; indexed by directory/positions.py.
                SearchParam(
                    "near",
                    "special",
                    ("Location.position",),
                    "position",
                    "Within a distance of latitude|longitude|distance|units (WGS84, UCUM units)",
                ),
            ],
            sort_name_param="name",
        ),
        _define(
            "Endpoint",
            [
                _string("name", ["Endpoint.name"], "string", "Name of the endpoint"),
                _identifier("Endpoint"),
                _reference(
                    "organization",
                    ["Endpoint.managingOrganization"],
                    ["Organization"],
                    "Organization that manages the endpoint",
                ),
                _token(
                    "status",
                    ["Endpoint.status"],
                    "code",
                    "active | suspended | error | off | entered-in-error | test",
                ),
                _token(
                    "connection-type",
                    ["Endpoint.connectionType"],
                    "Coding",
                    "Protocol/profile of the endpoint, e.g. hl7-fhir-rest, direct-project",
                ),
                _token(
                    "payload-type",
                    ["Endpoint.payloadType"],
                    "CodeableConcept",
                    "Type of content the endpoint accepts",
                ),
            ],
            sort_name_param="name",
        ),
    ]
}

RESOURCE_TYPES = tuple(RESOURCES)

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
