"""A standard FHIR client library (fhirpy) drives the server over real HTTP."""

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from tests.factories import make_npi

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.fixture
def client(live_server, credentials):
    """fhirpy with the client's certificate (as the TLS terminator passes it), key and token."""
    headers = {**credentials.http, "Accept": "application/fhir+json"}
    return SyncFHIRClient(f"{live_server.url}/fhir", extra_headers=headers)


def _directory(client):
    org = client.resource("Organization", name="Harbor Clinic", active=True)
    org.save()
    location = client.resource(
        "Location",
        name="Harbor Clinic Main",
        status="active",
        managingOrganization=org.to_reference(),
    )
    location.save()
    practitioners = []
    for i in range(7):
        practitioner = client.resource(
            "Practitioner",
            name=[{"family": "Okafor" if i % 2 else "Lindqvist", "given": [f"Sam{i}"]}],
            identifier=[{"system": NPI, "value": make_npi(9000 + i)}],
        )
        practitioner.save()
        practitioners.append(practitioner)
        client.resource(
            "PractitionerRole",
            practitioner=practitioner.to_reference(),
            organization=org.to_reference(),
            location=[location.to_reference()],
            specialty=[
                {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "207Q00000X"}]}
            ],
        ).save()
    return org, location, practitioners


ENDPOINT = {
    "status": "active",
    "address": "https://fhir.example.org/r4",
    "connectionType": {"code": "hl7-fhir-rest"},
    "payloadType": [{"text": "any"}],
}

# (resource type, content to create, element to change on update)
LIFECYCLE = [
    ("Organization", {"name": "Org A"}, ("active", False)),
    ("Practitioner", {"name": [{"family": "Ng"}]}, ("active", False)),
    ("Location", {"name": "Site A", "status": "active"}, ("status", "inactive")),
    ("Endpoint", ENDPOINT, ("status", "off")),
    ("PractitionerRole", {"active": True}, ("active", False)),
]


@pytest.mark.parametrize(("resource_type", "body", "change"), LIFECYCLE)
def test_create_read_update_delete(client, resource_type, body, change):
    resource = client.resource(resource_type, **body)
    resource.save()
    assert resource.id and resource["meta"]["versionId"] == "1"
    fetched = client.reference(resource_type, resource.id).to_resource()
    element, value = change
    fetched[element] = value
    fetched.save()
    assert fetched["meta"]["versionId"] == "2"
    assert client.reference(resource_type, resource.id).to_resource()[element] == value
    fetched.delete()
    with pytest.raises(ResourceNotFound):
        client.reference(resource_type, resource.id).to_resource()


def test_search_with_include_and_paging(client):
    org, _, practitioners = _directory(client)
    okafors = client.resources("Practitioner").search(family="okaf").limit(2).fetch_all()
    assert sorted(p.id for p in okafors) == sorted(p.id for p in practitioners[1::2])

    bundle = (
        client.resources("PractitionerRole")
        .search(
            specialty="http://nucc.org/provider-taxonomy|207Q00000X",
            organization=org.id,
            _total="accurate",  # beyond the first page, the total only when asked
        )
        .include("PractitionerRole", "practitioner")
        .limit(3)
        .fetch_raw()
    )
    assert bundle["type"] == "searchset" and bundle["total"] == 7
    modes = {e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"match", "include"}
    assert any(link["relation"] == "next" for link in bundle["link"])

    everything = client.resources("PractitionerRole").limit(2).fetch_all()
    assert len({role.id for role in everything}) == 7


def test_server_capability_statement_is_served(client):
    capability = client.execute("metadata", method="get")
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
