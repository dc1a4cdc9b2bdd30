"""Human-readable facts read out of a resource's JSON for admin list columns and summaries."""

from __future__ import annotations

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"


def display_name(resource_type: str, data: dict) -> str:
    """The name a person would use for this resource, or a dash."""
    if resource_type == "Practitioner":
        return _human_name(data.get("name") or [])
    if resource_type == "PractitionerRole":
        return _role_name(data)
    if resource_type == "OrganizationAffiliation":
        return _joined(data, "participatingOrganization", "organization", " in ")
    name = data.get("name")
    return name if isinstance(name, str) and name else "—"


def npi(data: dict) -> str:
    values = [
        ident.get("value", "")
        for ident in data.get("identifier") or []
        if ident.get("system") == NPI_SYSTEM
    ]
    return ", ".join(v for v in values if v)


def identifiers(data: dict) -> list[str]:
    """Every identifier as `system|value`, for the summary."""
    return [
        f"{ident.get('system') or ''}|{ident.get('value') or ''}"
        for ident in data.get("identifier") or []
    ]


def city_state(data: dict) -> str:
    address = data.get("address")
    first = address[0] if isinstance(address, list) and address else address
    if not isinstance(first, dict):
        return ""
    return ", ".join(part for part in (first.get("city"), first.get("state")) if part)


def status(data: dict) -> str:
    """`status` where the type has one (Location, Endpoint), else active / inactive."""
    if "status" in data:
        return str(data["status"])
    if "active" in data:
        return "active" if data["active"] else "inactive"
    return ""


def type_codes(data: dict) -> str:
    """Codes of `type` (Organization, Location), `specialty` (roles) or `connectionType`."""
    codes = []
    for key in ("type", "specialty"):
        value = data.get(key) or []
        for concept in value if isinstance(value, list) else [value]:
            if isinstance(concept, str):  # Group.type is a code
                codes.append(concept)
            elif isinstance(concept, dict):
                codings = concept.get("coding") or []
                codes += [c.get("display") or c.get("code", "") for c in codings]
    connection = data.get("connectionType")
    if isinstance(connection, dict):
        codes.append(connection.get("code", ""))
    return ", ".join(c for c in codes if c)


def references(data: dict) -> list[str]:
    """The top-level references a resource makes, e.g. a role's practitioner and organization."""
    found = []
    for key, value in data.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("reference"), str):
                found.append(f"{key}: {item['reference']}")
    return found


def _human_name(names: list) -> str:
    for name in names:
        if not isinstance(name, dict):
            continue
        text = " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
        if text or name.get("text"):
            return text or name["text"]
    return "—"


def _role_name(data: dict) -> str:
    return _joined(data, "practitioner", "organization", " at ")


def _joined(data: dict, first: str, second: str, joiner: str) -> str:
    """Two references by display (else reference), e.g. `Dr Smith at Acme`."""
    parts: list[str] = []
    for key in (first, second):
        ref = data.get(key)
        if not isinstance(ref, dict):
            continue
        text = ref.get("display") or ref.get("reference")
        if text:
            parts.append(text)
    return joiner.join(parts) if parts else "—"
