"""Over HTTP: the reads and searches a batch or transaction carries count against the client's
rate limit, each as a request of its own, so one POST cannot multiply a client's allowance."""

from __future__ import annotations

import json

import pytest

from directory.models import Resource
from security.models import RequestAudit

pytestmark = pytest.mark.django_db(transaction=True)


def _batch(searches: int, creates: int = 0) -> str:
    entries = [
        {"request": {"method": "GET", "url": "Organization?name=x"}} for _ in range(searches)
    ]
    entries += [
        {
            "resource": {"resourceType": "Organization", "name": f"Org {n}"},
            "request": {"method": "POST", "url": "Organization"},
        }
        for n in range(creates)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries})


@pytest.fixture
def limited(settings):
    settings.RATE_LIMIT_PER_MINUTE, settings.RATE_LIMIT_BURST = 1, 10
    settings.RATE_LIMIT_CONCURRENT = 0


def test_searches_in_a_batch_use_up_the_allowance(fhir, limited):
    first = fhir("POST", "", data=_batch(searches=5))  # 1 for the POST, 5 for its searches
    assert first.status_code == 200, first.text
    second = fhir("POST", "", data=_batch(searches=5, creates=1))
    assert second.status_code == 429, second.text
    assert second.headers["Cache-Control"] == "no-store"
    assert int(second.headers["Retry-After"]) >= 1
    assert second.json()["issue"][0]["code"] == "throttled"
    # Refused before any entry ran: its create is not stored.
    assert not Resource.objects.filter(resource_type="Organization").exists()
    assert RequestAudit.objects.filter(status=429).count() == 1


def test_a_batch_of_writes_costs_one_request(fhir, limited):
    for _ in range(3):
        response = fhir("POST", "", data=_batch(searches=0, creates=3))
        assert response.status_code == 200, response.text
    assert Resource.objects.filter(resource_type="Organization").count() == 9


def test_a_batch_larger_than_the_burst_passes_once_then_the_client_waits(fhir, limited):
    response = fhir("POST", "", data=_batch(searches=30))
    assert response.status_code == 200, response.text
    assert fhir("GET", "Organization").status_code == 429
