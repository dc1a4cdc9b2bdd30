"""The API over a real socket, as a deployed client sees it."""

from __future__ import annotations

import pytest
import requests

from .conftest import body_for

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/fhir+json"


def test_create_read_round_trip_over_http(live_server, credentials):
    base = f"{live_server.url}/fhir"
    created = requests.post(
        f"{base}/Organization",
        json=body_for("Organization", name="Wire Clinic"),
        headers={**credentials.http, "Accept": JSON, "Content-Type": JSON},
        timeout=10,
    )
    assert created.status_code == 201
    assert created.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    location = created.headers["Location"]
    assert location.startswith(f"{base}/Organization/") and location.endswith("/_history/1")

    read = requests.get(
        location.rsplit("/_history", 1)[0],
        headers={**credentials.http, "Accept": JSON},
        timeout=10,
    )
    assert read.status_code == 200
    assert read.json() == created.json()
    assert read.json()["name"] == "Wire Clinic"
    assert read.headers["ETag"] == 'W/"1"'
    assert read.headers["Cache-Control"] == "no-store"


def test_errors_over_http_are_outcomes(live_server, credentials):
    base = f"{live_server.url}/fhir"
    response = requests.post(
        f"{base}/Organization",
        data=b"{not json",
        headers={**credentials.http, "Content-Type": JSON},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["Cache-Control"] == "no-store"
    missing = requests.get(f"{base}/Organization/nope", headers=credentials.http, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["issue"][0]["code"] == "not-found"
