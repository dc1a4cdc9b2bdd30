"""Shared fixtures. Tests run against the PostgreSQL named by DATABASE_URL (see README)."""

import pytest
from rest_framework.test import APIClient

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def api(db):
    """A FHIR API client speaking application/fhir+json to the app in-process."""
    client = APIClient()
    client.credentials(HTTP_ACCEPT=FHIR_JSON)
    return client
