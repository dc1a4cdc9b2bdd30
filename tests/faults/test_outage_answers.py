"""Each place that meets an unreachable database answers 503 with Retry-After, nothing else.

The database is made to fail where each check or the API reaches it; the rest of the request
runs for real through the whole security chain. Runs on both databases.
"""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory
from psycopg.errors import QueryCanceled

from common.outage import is_database_unavailable
from fhirapi.errors import server_error
from security.models import RequestAudit

pytestmark = pytest.mark.django_db

UNREACHABLE = OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


def unreachable(*args, **kwargs):
    raise UNREACHABLE


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    issue = response.json()["issue"][0]
    assert (issue["code"], issue["severity"]) == ("transient", "error")
    assert "127.0.0.1" not in issue["diagnostics"]


@pytest.mark.parametrize(
    "where",
    [
        "security.truststore.load",  # the certificate check's trust anchors and CRLs
        "security.middleware.client_certificate.identify_client",  # the client lookup
        "security.middleware.api_key.verify_key",  # the API key lookup
        "directory.storage.read",  # the API's own read
    ],
)
def test_a_check_or_read_that_cannot_reach_the_database_answers_503(api, monkeypatch, where):
    monkeypatch.setattr(where, unreachable)
    assert_unavailable(api.get("/fhir/Organization/some-id"))
    assert RequestAudit.objects.get().outcome == "database-unavailable"


def test_a_lost_connection_during_a_write_answers_503(api, monkeypatch):
    def lost(*args, **kwargs):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr("directory.storage.create", lost)
    body = {"resourceType": "Organization", "name": "Outage Clinic"}
    assert_unavailable(api.post("/fhir/Organization", body, format="json"))


def test_other_errors_in_a_check_still_fail_closed(api, monkeypatch):
    monkeypatch.setattr("security.middleware.api_key.verify_key", lambda presented: 1 / 0)
    response = api.get("/fhir/Organization")
    assert response.status_code == 401
    assert "Retry-After" not in response


def test_a_cancelled_statement_in_a_check_is_a_timeout_not_a_refusal(api, monkeypatch):
    def cancelled(presented):
        try:
            raise QueryCanceled("canceling statement due to statement timeout")
        except QueryCanceled as error:
            raise OperationalError(str(error)) from error

    monkeypatch.setattr("security.middleware.api_key.verify_key", cancelled)
    api.raise_request_exception = False
    response = api.get("/fhir/Organization")
    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "timeout"
    assert response["Retry-After"] == "10"


@pytest.mark.parametrize("path", ["/fhir/Organization", "/admin/"])
def test_an_outage_escaping_to_the_error_handler_answers_503(path):
    request = RequestFactory().get(path)
    try:
        raise RuntimeError("while handling") from UNREACHABLE
    except RuntimeError:
        response = server_error(request)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_an_unrelated_error_in_the_error_handler_is_still_a_500():
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        response = server_error(RequestFactory().get("/fhir/Organization"))
    assert response.status_code == 500


def test_database_errors_are_found_in_the_cause_chain():
    try:
        try:
            raise UNREACHABLE
        except OperationalError as error:
            raise ValueError("wrapped") from error
    except ValueError as wrapped:
        assert is_database_unavailable(wrapped)
    assert not is_database_unavailable(ValueError("plain"))
    assert not is_database_unavailable(None)
