"""Plan-Net resources as NDJSON import lines, for the targetProfile tests of the import paths:
a plannet-PractitionerRole whose references point at targets that do or do not conform to the
profiles its elements require (plannet-PractitionerRole.practitioner -> plannet-Practitioner)."""

from __future__ import annotations

from tests import plannet
from tests.factories import make_npi

PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/"
PRACTITIONER_PROFILE = PLAN_NET + "plannet-Practitioner"
ORGANIZATION_PROFILE = PLAN_NET + "plannet-Organization"


def _example(resource_type: str, example_id: str) -> dict:
    return next(
        r for r in plannet.examples() if (r["resourceType"], r["id"]) == (resource_type, example_id)
    )


def practitioner(pid: str, n: int, *, conforming: bool) -> dict:
    """The Plan-Net example Counselor with its own id and NPI; not conforming: valid R4 claiming
    no profile, failing only plannet-Practitioner's `active` pattern."""
    content = {**_example("Practitioner", "Counselor"), "id": pid}
    content["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": make_npi(n)}]
    if not conforming:
        content["active"] = False
        del content["meta"]
    return content


def organization(oid: str) -> dict:
    """An Organization plannet-Organization refuses (its `active` is fixed true)."""
    return {"resourceType": "Organization", "id": oid, "active": False, "name": f"Closed {oid}"}


def role(rid: str, practitioner_id: str, *, organization_id: str | None = None) -> dict:
    """plannet-PractitionerRole pointing at nothing but its practitioner (and organization)."""
    content = {**_example("PractitionerRole", "AnonRole"), "id": rid}
    for name in ("organization", "location", "healthcareService", "endpoint"):
        content.pop(name, None)
    content["extension"] = [e for e in content["extension"] if "network-reference" not in e["url"]]
    content["practitioner"] = {"reference": f"Practitioner/{practitioner_id}"}
    if organization_id:
        content["organization"] = {"reference": f"Organization/{organization_id}"}
    return content
