"""Status codes, negotiation and error shapes: every failure is an OperationOutcome."""

from __future__ import annotations

import io
import logging

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from fhirapi import errors, handlers
from fhirapi.exceptions import PayloadTooLarge
from fhirapi.parsers import read_limited
from tests.factories import OrganizationFactory

from .conftest import body_for, outcome_issue, send

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- 404 / 405


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient/1",
        "/fhir/Patient",
        "/fhir/Patient/_history",
        "/fhir/Observation/1/_history/1",
        "/fhir/nothing-here",
        "/fhir/Organization/1/extra/segments/here",
    ],
)
def test_unknown_paths_are_404_outcomes(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert outcome_issue(response)["severity"] == "error"
    assert response["Cache-Control"] == "no-store"


def test_unknown_type_on_write_is_404(api):
    response = send(api, "POST", "/fhir/Patient", {"resourceType": "Patient"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/fhir/Organization/x"),
        ("DELETE", "/fhir/Organization/_search"),
        ("PUT", "/fhir/Organization/_history"),
        # The base takes only POSTed Bundles (search-system is not offered).
        ("GET", "/fhir"),
        ("PUT", "/fhir/"),
        ("POST", "/fhir/Organization/x"),
        ("GET", "/fhir/Organization/_search"),
        ("POST", "/fhir/metadata"),
        ("DELETE", "/fhir/Organization/x/_history/1"),
    ],
)
def test_unsupported_methods_are_405(api, method, path):
    response = send(api, method, path, body_for("Organization"))
    assert response.status_code == 405
    assert outcome_issue(response)["code"] == "not-supported"
    assert method not in response["Allow"]
    assert response["Cache-Control"] == "no-store"


def test_405_allow_header_lists_routed_methods(api):
    response = send(api, "PATCH", "/fhir/Organization/x", "{}")
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}


# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    "accept",
    [
        "application/fhir+json",
        "application/json",
        "application/json+fhir",
        "*/*",
        "application/*",
        "",
        "application/fhir+xml;q=0.9, application/fhir+json",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/fhir+json; fhirVersion=4.0",
    ],
)
def test_json_compatible_accept_gets_fhir_json(db, accept):
    client = APIClient()
    response = client.get("/fhir/metadata", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert response.json()["resourceType"] == "CapabilityStatement"


def test_missing_accept_gets_json(db):
    response = APIClient().get("/fhir/metadata")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"


@pytest.mark.parametrize(
    "accept",
    [
        "application/fhir+xml",
        "application/xml",
        "text/turtle",
        "text/html",
        "application/fhir+json;q=0",
        "application/x-turtle, text/xml",
    ],
)
def test_unsupported_accept_is_406(db, accept):
    response = APIClient().get("/fhir/metadata", HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert outcome_issue(response)["code"] == "not-supported"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "fmt", ["json", "application/json", "application/fhir+json", "application/json+fhir"]
)
def test_json_format_param_is_honoured_over_accept(api, fmt):
    stored = OrganizationFactory.create()
    response = api.get(
        f"/fhir/Organization/{stored['id']}", {"_format": fmt}, HTTP_ACCEPT="application/xml"
    )
    assert response.status_code == 200
    assert response.json()["id"] == stored["id"]


def test_unescaped_plus_in_format_still_means_json(api):
    response = api.get("/fhir/metadata?_format=application/fhir+json")
    assert response.status_code == 200


@pytest.mark.parametrize("fmt", ["xml", "application/fhir+xml", "text/xml", "ttl", "html"])
def test_non_json_format_param_is_406(api, fmt):
    response = api.get("/fhir/metadata", {"_format": fmt})
    assert response.status_code == 406
    outcome_issue(response)


def test_406_on_write_stores_nothing(api):
    response = send(api, "POST", "/fhir/Organization?_format=xml", body_for("Organization"))
    assert response.status_code == 406
    assert api.get("/fhir/Organization/_history").json()["total"] == 0


# ---------------------------------------------------------------- request body types


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/json",
        "application/json+fhir",
        "application/fhir+json; charset=utf-8",
        "Application/FHIR+JSON",
    ],
)
def test_json_content_types_are_accepted(api, content_type):
    response = send(
        api, "POST", "/fhir/Organization", body_for("Organization"), content_type=content_type
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "content_type",
    [
        "application/xml",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/fhir+xml",
        "multipart/form-data; boundary=x",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_non_json_content_type_is_415(api, content_type, method):
    path = "/fhir/Organization/o1" if method == "PUT" else "/fhir/Organization"
    response = send(api, method, path, body_for("Organization", id="o1"), content_type=content_type)
    assert response.status_code == 415
    assert outcome_issue(response)["code"] == "not-supported"
    assert response["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- size limit


def test_body_over_limit_is_413(api, settings):
    settings.FHIR_MAX_BODY_BYTES = 200
    body = body_for("Organization", name="x" * 300)
    response = send(api, "POST", "/fhir/Organization", body)
    assert response.status_code == 413
    assert outcome_issue(response)["code"] == "too-long"
    assert api.get("/fhir/Organization/_history").json()["total"] == 0


def test_body_under_limit_is_fine(api, settings):
    settings.FHIR_MAX_BODY_BYTES = 2000
    response = send(api, "POST", "/fhir/Organization", body_for("Organization"))
    assert response.status_code == 201


def test_read_limited_refuses_streams_longer_than_declared(settings):
    # A client can understate Content-Length; the reader must still stop at the limit.
    settings.FHIR_MAX_BODY_BYTES = 10
    assert read_limited(io.BytesIO(b"0123456789")) == b"0123456789"
    with pytest.raises(PayloadTooLarge):
        read_limited(io.BytesIO(b"0123456789A"))


# ---------------------------------------------------------------- CSRF


def test_writes_need_no_csrf_token(credentials):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(**credentials.meta)
    response = send(client, "POST", "/fhir/Organization", body_for("Organization"))
    assert response.status_code == 201
    path = f"/fhir/Organization/{response.json()['id']}"
    assert client.delete(path).status_code == 204


# ---------------------------------------------------------------- 500


def test_unexpected_exception_is_generic_500(api, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("connection to db host=secret-host password=hunter2 failed")

    monkeypatch.setattr(handlers.storage, "read", explode)
    with caplog.at_level(logging.ERROR, logger="fhirapi"):
        response = api.get("/fhir/Organization/x")
    assert response.status_code == 500
    issue = outcome_issue(response)
    assert issue["code"] == "exception"
    assert "hunter2" not in response.content.decode() and "secret-host" not in issue["diagnostics"]
    assert response["Cache-Control"] == "no-store"
    assert "hunter2" in caplog.text  # the detail is kept server-side


def test_django_500_handler_answers_fhir_paths_with_outcome():
    request = RequestFactory().get("/fhir/Organization")
    response = errors.server_error(request)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert b'"OperationOutcome"' in response.content


def test_django_error_handlers_leave_admin_alone():
    request = RequestFactory().get("/admin/nope")
    assert b"OperationOutcome" not in errors.server_error(request).content
    assert b"OperationOutcome" not in errors.page_not_found(request, Exception()).content


def test_admin_still_served(db):
    response = APIClient().get("/admin/login/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_not_found_outside_fhir_is_not_an_outcome(db):
    response = APIClient().get("/elsewhere")
    assert response.status_code == 404
    assert b"OperationOutcome" not in response.content


def test_drf_format_override_and_browsable_api_are_off(api):
    response = api.get("/fhir/metadata", {"format": "api"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"


@pytest.mark.parametrize("path", ["/fhir/Organization/", "/fhir/metadata/"])
def test_trailing_slash_is_404_not_redirect(api, path):
    response = api.get(path)
    assert response.status_code == 404
    outcome_issue(response)


def test_options_is_405(api):
    response = api.generic("OPTIONS", "/fhir/Organization")
    assert response.status_code == 405


def test_bad_request_and_forbidden_outside_views_are_outcomes_under_fhir():
    fhir, admin = RequestFactory().get("/fhir/Organization"), RequestFactory().get("/admin/x")
    for handler, status in ((errors.bad_request, 400), (errors.permission_denied, 403)):
        response = handler(fhir, Exception("detail never shown"))
        assert response.status_code == status
        assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
        assert b'"OperationOutcome"' in response.content and b"detail" not in response.content
        assert b"OperationOutcome" not in handler(admin, Exception()).content


def test_unknown_host_under_fhir_is_an_outcome(db):
    response = APIClient().get("/fhir/metadata", HTTP_HOST="unknown.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
