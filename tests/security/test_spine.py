"""The optional NHS Spine profile: Ssp-* headers checked against the requested interaction."""

import uuid

import pytest

from security.middleware.spine import expected_interaction_id

from .jwt_fixtures import *  # noqa: F403  (fixtures)
from .jwt_fixtures import bearer, sign

pytestmark = pytest.mark.django_db
FHIR_JSON = "application/fhir+json"
PREFIX = "urn:nhs:names:services:directory:"


@pytest.fixture
def spine(chain):
    chain.SECURITY_SPINE_PROFILE = True
    return chain


def spine_headers(interaction_id, **overrides):
    headers = {
        "Ssp-TraceID": str(uuid.uuid4()),
        "Ssp-From": "200000000999",
        "Ssp-To": "200000000123",
        "Ssp-InteractionID": interaction_id,
    }
    headers.update(overrides)
    return {name: value for name, value in headers.items() if value is not None}


def call(client, method, path, interaction_id, token, **overrides):
    return getattr(client, method)(
        path,
        HTTP_ACCEPT=FHIR_JSON,
        headers=spine_headers(interaction_id, **overrides),
        **bearer(token),
    )


def search_organizations(client, token, **overrides):
    interaction_id = PREFIX + "Organization.search-type"
    return call(client, "get", "/fhir/Organization", interaction_id, token, **overrides)


@pytest.fixture
def token(jwt_keys):
    return sign(jwt_keys.ec_a, scope="system/*.*")


@pytest.mark.parametrize(
    "method, path, interaction_id",
    [
        ("get", "/fhir/Organization", "Organization.search-type"),
        ("post", "/fhir/Organization/_search", "Organization.search-type"),
        ("get", "/fhir/Practitioner/p-1", "Practitioner.read"),
        ("delete", "/fhir/Endpoint/e-1", "Endpoint.delete"),
        ("get", "/fhir/Location/l-1/_history/2", "Location.vread"),
        ("get", "/fhir/PractitionerRole/_history", "PractitionerRole.history-type"),
        ("get", "/fhir/_history", "history-system"),
        ("get", "/fhir/metadata", "capabilities"),
    ],
)
def test_matching_headers_pass(spine, client, token, method, path, interaction_id):
    response = call(client, method, path, PREFIX + interaction_id, token)
    assert response.status_code not in (400, 401, 403)
    assert response.wsgi_request.security.outcome == "ok"


@pytest.mark.parametrize(
    "overrides",
    [
        {"Ssp-TraceID": None},
        {"Ssp-TraceID": "not-a-uuid"},
        {"Ssp-TraceID": "{" + str(uuid.uuid4()) + "}"},
        {"Ssp-From": None},
        {"Ssp-From": "ASID-12"},
        {"Ssp-To": None},
        {"Ssp-To": "200000000124"},
        {"Ssp-InteractionID": None},
        {"Ssp-InteractionID": PREFIX + "Organization.read"},  # GET /Organization is a search
        {"Ssp-InteractionID": PREFIX + "Practitioner.search-type"},  # another type
    ],
)
def test_wrong_or_missing_headers_are_refused(spine, client, token, overrides):
    response = search_organizations(client, token, **overrides)
    assert response.status_code == 400
    assert response.wsgi_request.security.outcome == "spine-headers"
    assert response.json()["issue"][0]["code"] == "invalid"


def test_metadata_needs_spine_headers_too(spine, client):
    assert client.get("/fhir/metadata", HTTP_ACCEPT=FHIR_JSON).status_code == 400


def test_without_our_asid_configured_everything_is_refused(spine, client, token):
    spine.SECURITY_SPINE_ASID = ""
    response = search_organizations(client, token, **{"Ssp-To": ""})
    assert response.status_code == 400


def test_profile_off_ignores_the_headers(chain, client, token):
    response = client.get("/fhir/Organization", HTTP_ACCEPT=FHIR_JSON, **bearer(token))
    assert response.status_code == 200


def test_interaction_ids():
    assert expected_interaction_id("read", "Organization") == (
        "urn:nhs:names:services:directory:Organization.read"
    )
    assert expected_interaction_id("history-system", "") == (
        "urn:nhs:names:services:directory:history-system"
    )


@pytest.mark.parametrize("bundle_type", ["batch", "transaction"])
def test_a_posted_bundle_is_named_by_its_type(spine, client, token, bundle_type):
    body = {"resourceType": "Bundle", "type": bundle_type, "entry": []}

    def post(interaction_id):
        return client.post(
            "/fhir",
            body,
            content_type=FHIR_JSON,
            HTTP_ACCEPT=FHIR_JSON,
            headers=spine_headers(PREFIX + interaction_id),
            **bearer(token),
        )

    assert post(bundle_type).status_code == 200
    other = "batch" if bundle_type == "transaction" else "transaction"
    refused = post(other)
    assert refused.status_code == 400
    assert refused.wsgi_request.security.outcome == "spine-headers"
