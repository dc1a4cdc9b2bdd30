"""Bearer, scope and Spine checks over a real socket, as a deployed client meets them."""

import uuid

import pytest
import requests

from .jwt_fixtures import *  # noqa: F403  (fixtures)
from .jwt_fixtures import sign

pytestmark = pytest.mark.django_db(transaction=True)
JSON = "application/fhir+json"


def fetch(server, method, path, token=None, **kwargs):
    headers = {"Accept": JSON, **kwargs.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kwargs)


def test_token_scopes_over_http(live_chain, jwt_keys):
    reader = sign(jwt_keys.rsa_a, "RS256", scope="system/Organization.rs")
    assert fetch(live_chain, "GET", "/fhir/Organization", reader).status_code == 200
    refused = fetch(live_chain, "GET", "/fhir/Practitioner", reader)
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["code"] == "forbidden"
    writer = sign(jwt_keys.ec_a, scope="system/Organization.c")
    created = fetch(
        live_chain, "POST", "/fhir/Organization", writer,
        json={"resourceType": "Organization", "name": "Live"}, headers={"Content-Type": JSON},
    )  # fmt: skip
    assert created.status_code == 201
    assert fetch(live_chain, "POST", "/fhir/Organization", reader).status_code == 403


def test_missing_and_bad_tokens_over_http(live_chain, jwt_keys):
    missing = fetch(live_chain, "GET", "/fhir/Organization")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["resourceType"] == "OperationOutcome"
    forged = sign(jwt_keys.stray)
    assert fetch(live_chain, "GET", "/fhir/Organization", forged).status_code == 401
    assert fetch(live_chain, "GET", "/fhir/metadata").status_code == 200


def test_spine_profile_over_http(live_chain, chain, jwt_keys):
    chain.SECURITY_SPINE_PROFILE = True  # read per request, so the running server sees it
    token = sign(jwt_keys.ec_a)
    spine = {
        "Ssp-TraceID": str(uuid.uuid4()),
        "Ssp-From": "200000000999",
        "Ssp-To": "200000000123",
        "Ssp-InteractionID": "urn:nhs:names:services:directory:Location.search-type",
    }
    assert fetch(live_chain, "GET", "/fhir/Location", token, headers=spine).status_code == 200
    wrong = {**spine, "Ssp-InteractionID": "urn:nhs:names:services:directory:Location.read"}
    refused = fetch(live_chain, "GET", "/fhir/Location", token, headers=wrong)
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["code"] == "invalid"
    assert fetch(live_chain, "GET", "/fhir/Location", token).status_code == 400
