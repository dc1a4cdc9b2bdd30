"""Fixtures for the HTTP layer tests: resource bodies, stored resources."""

from __future__ import annotations

import json

import pytest
import requests

from tests.factories import FACTORIES

TYPES = list(FACTORIES)
FHIR_JSON = "application/fhir+json"


def body_for(resource_type: str, **overrides) -> dict:
    """A valid resource body without an id, as a client would POST it."""
    return FACTORIES[resource_type].build(**{"id": None, **overrides})


@pytest.fixture(params=TYPES)
def resource_type(request) -> str:
    return request.param


@pytest.fixture
def stored(db, resource_type) -> dict:
    """One stored resource of the parametrized type (version 1)."""
    return FACTORIES[resource_type].create()


def send(api, method: str, path: str, content=None, *, content_type=FHIR_JSON, **headers):
    """Send a request with a JSON (or raw string) body; headers use Django's HTTP_* names."""
    data = content if isinstance(content, str | bytes) or content is None else json.dumps(content)
    return api.generic(method, path, data or "", content_type=content_type, **headers)


def outcome_issue(response) -> dict:
    """The first issue of an OperationOutcome response, checking the response is one."""
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]


@pytest.fixture
def fhir(live_server, credentials, token_issuer):
    """Send a request whose token carries the given scopes (all of them by default)."""

    def send(
        method: str, path: str = "", *, scope: str = "system/*.cruds", **kwargs
    ) -> requests.Response:
        headers = {
            **credentials.http,
            "Authorization": f"Bearer {token_issuer.mint(scope=scope)}",
            "Accept": FHIR_JSON,
            "Content-Type": FHIR_JSON,
            **kwargs.pop("headers", {}),
        }
        url = f"{live_server.url}/fhir{'/' if path else ''}{path}"
        return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    return send
