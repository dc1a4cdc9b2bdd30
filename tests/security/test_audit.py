"""One RequestAudit row per API request, served or refused, over real HTTP; never a secret."""

from __future__ import annotations

import logging

import pytest
import requests
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.db import connection, transaction
from django.test import Client
from django.test.testcases import LiveServerThread
from django.utils import timezone

from security.context import context_of
from security.keys import issue_key, prefix_of
from security.middleware.audit import write_audit
from security.middleware.base import CheckMiddleware
from security.models import ApiClient, RequestAudit
from security.refusal import Refusal
from tests.factories import FACTORIES

from .test_redaction import JWT, OPAQUE_TOKEN, SHORT_BAD_KEY, secret_part

HEADERS_MIDDLEWARE = "security.middleware.headers.SecurityHeadersMiddleware"
AUDIT_MIDDLEWARE = "security.middleware.audit.AuditMiddleware"
FINGERPRINT = "ab" * 32
SUBJECT = "CN=client.harbor.example,O=Harbor Clinic"


class IdentifyMiddleware:
    """Test only: does what the certificate, key and token checks would do to the context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        context = context_of(request)
        name = request.headers.get("X-Test-Client")
        if name:
            context.client = ApiClient.objects.get(name=name)
            context.certificate_fingerprint = FINGERPRINT
            context.certificate_subject = SUBJECT
            context.key_prefix = prefix_of(request.headers.get("X-API-Key", ""))
            context.token_subject = "client-1"
            context.token_issuer = "https://auth.example.org"
        return self.get_response(request)


class RefuseOnRequestMiddleware(CheckMiddleware):
    """Test only: refuses with the reason code named in X-Test-Refuse, as a real check would."""

    def check(self, request, context):
        code = request.headers.get("X-Test-Refuse")
        if code:
            raise Refusal(code)


def audited_middleware(settings) -> list[str]:
    rest = [m for m in settings.MIDDLEWARE if m != HEADERS_MIDDLEWARE]
    return [
        HEADERS_MIDDLEWARE,
        AUDIT_MIDDLEWARE,
        f"{__name__}.IdentifyMiddleware",
        f"{__name__}.RefuseOnRequestMiddleware",
        *rest,
    ]


@pytest.fixture
def server(settings, transactional_db):
    """A live server started after the middleware override (the session one keeps its chain)."""
    settings.MIDDLEWARE = audited_middleware(settings)
    thread = LiveServerThread("127.0.0.1", StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()


@pytest.fixture
def api_client(transactional_db):
    client = ApiClient.objects.create(name="Harbor Clinic")
    _, key = issue_key(client, "test")
    return client, key


def test_one_row_per_request_with_who_and_what(server, api_client):
    client, key = api_client
    organization = FACTORIES["Organization"].create()
    headers = {"X-Test-Client": client.name, "X-API-Key": key, "Accept": "application/fhir+json"}
    url = f"{server}/fhir/Organization/{organization['id']}"
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200

    (row,) = RequestAudit.objects.all()
    assert row.client_id == client.pk and row.client_name == "Harbor Clinic"
    assert row.remote_addr == "127.0.0.1"
    assert row.certificate_fingerprint == FINGERPRINT
    assert row.certificate_subject == SUBJECT
    assert row.key_prefix == prefix_of(key) != ""
    assert (row.token_subject, row.token_issuer) == ("client-1", "https://auth.example.org")
    assert (row.method, row.path) == ("GET", f"/fhir/Organization/{organization['id']}")
    assert (row.resource_type, row.resource_id) == ("Organization", organization["id"])
    assert (row.status, row.outcome) == (200, "ok")
    assert 0 <= row.duration_ms < 10_000


def test_a_deleted_clients_rows_stay_with_its_name_and_no_link(server, api_client):
    # The column has no database constraint (one less trigger and lock per request), so the
    # SET_NULL is Django's: rows must neither vanish nor keep pointing at a reused id.
    client, key = api_client
    headers = {"X-Test-Client": client.name, "X-API-Key": key}
    assert requests.get(f"{server}/fhir/metadata", headers=headers, timeout=10).ok
    client.delete()
    (row,) = RequestAudit.objects.all()
    assert (row.client_id, row.client_name) == (None, "Harbor Clinic")


@pytest.mark.parametrize(
    ("trusted", "recorded"), [(["127.0.0.1/32"], "198.51.100.23"), (["unix"], "127.0.0.1")]
)
def test_the_client_address_is_the_one_the_trusted_proxy_forwarded(
    settings, server, trusted, recorded
):
    settings.SECURITY_TRUSTED_PROXIES = trusted
    # A proxy in front appends its peer; what the client wrote on the left is only its claim.
    forwarded = {"X-Forwarded-For": "192.0.2.66, 198.51.100.23", "Accept": "application/fhir+json"}
    requests.get(f"{server}/fhir/Organization", headers=forwarded, timeout=10)
    assert RequestAudit.objects.get().remote_addr == recorded


def test_each_request_is_audited_once(server):
    for url in ("/fhir/metadata", "/fhir/Practitioner", "/fhir/Practitioner/_history", "/fhir/x"):
        requests.get(f"{server}{url}", timeout=10)
    rows = list(RequestAudit.objects.order_by("id").values_list("path", "status", "resource_type"))
    assert rows == [
        ("/fhir/metadata", 200, ""),
        ("/fhir/Practitioner", 200, "Practitioner"),
        ("/fhir/Practitioner/_history", 200, "Practitioner"),
        ("/fhir/x", 404, ""),
    ]


def test_non_api_requests_are_not_audited(server):
    for url in ("/healthz", "/readyz", "/admin/login/", "/nowhere"):
        requests.get(f"{server}{url}", timeout=10)
    assert not RequestAudit.objects.exists()


@pytest.mark.parametrize("code", ["cert-revoked", "key-invalid", "scope-missing"])
def test_refused_request_records_its_reason_code(server, code):
    response = requests.get(
        f"{server}/fhir/Practitioner/abc?name=x", headers={"X-Test-Refuse": code}, timeout=10
    )
    assert response.status_code in (401, 403)
    (row,) = RequestAudit.objects.all()
    assert (row.outcome, row.status) == (code, response.status_code)
    # Refused before the view routed it: the path says what was asked for, and nothing else
    # second-guesses the routing table.
    assert (row.interaction, row.resource_type, row.resource_id) == ("", "", "")
    assert row.path == "/fhir/Practitioner/abc"


def test_no_column_ever_holds_a_key_or_token(server, api_client):
    client, key = api_client
    secrets = (key, secret_part(key), JWT, OPAQUE_TOKEN, SHORT_BAD_KEY)
    identified = {"X-Test-Client": client.name}
    sent = [
        ({"X-API-Key": key, "Authorization": f"Bearer {JWT}", **identified}, f"?apikey={key}"),
        ({"Authorization": f"Bearer {OPAQUE_TOKEN}"}, f"?APIKEY={SHORT_BAD_KEY}"),
        ({"X-API-Key": SHORT_BAD_KEY, "X-Test-Refuse": "key-invalid"}, f"?apikey={key}"),
    ]
    for headers, query in sent:
        requests.get(f"{server}/fhir/Practitioner{query}", headers=headers, timeout=10)
        requests.get(f"{server}/fhir/Practitioner/{key}{query}", headers=headers, timeout=10)
    rows = list(RequestAudit.objects.values())
    assert len(rows) == 6
    for row in rows:
        for column, value in row.items():
            for secret in secrets:
                assert secret not in str(value), column


def test_a_failed_audit_write_is_logged_and_the_response_still_goes_out(
    settings, transactional_db, monkeypatch, caplog, api_client
):
    settings.MIDDLEWARE = audited_middleware(settings)
    _, key = api_client

    def database_down(*args, **kwargs):
        raise RuntimeError("database unavailable")

    # The one write both databases go through (PostgreSQL's is not RequestAudit.save).
    monkeypatch.setattr("security.middleware.audit._insert", database_down)
    with caplog.at_level(logging.ERROR, logger="security.audit"):
        # This chain has no API key middleware to take `apikey` out of the query, so the search
        # would refuse it as an unknown parameter; lenient handling ignores it.
        headers = {"X-API-Key": key, "Prefer": "handling=lenient"}
        response = Client().get(f"/fhir/Practitioner?apikey={key}", headers=headers)
    assert response.status_code == 200
    (record,) = [r for r in caplog.records if r.name == "security.audit"]
    assert "Audit record not written" in record.getMessage()
    assert "path=/fhir/Practitioner" in record.getMessage()
    assert key not in caplog.text and secret_part(key) not in caplog.text


def _unsaved_row() -> RequestAudit:
    return RequestAudit(
        time=timezone.now(), method="GET", path="/fhir/Practitioner", status=200, outcome="ok",
        decision="read needs Practitioner.r: allow", duration_ms=3,
    )  # fmt: skip


def _commit_setting() -> str | None:
    """The session's synchronous_commit (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_the_written_row_holds_every_field_and_the_session_keeps_its_commit_setting(
    transactional_db,
):
    before = _commit_setting()
    write_audit(_unsaved_row())
    (row,) = RequestAudit.objects.filter(path="/fhir/Practitioner")
    assert (row.method, row.status, row.outcome, row.duration_ms) == ("GET", 200, "ok", 3)
    assert row.decision == "read needs Practitioner.r: allow" and row.client_id is None
    # Only the audit statement's own transaction commits without waiting for the flush.
    assert _commit_setting() == before


def test_inside_a_transaction_the_row_is_written_as_part_of_it(transactional_db):
    before = _commit_setting()
    with transaction.atomic():
        write_audit(_unsaved_row())
        # Relaxed here, the setting would relax the enclosing transaction's writes too.
        assert _commit_setting() == before
    assert RequestAudit.objects.filter(path="/fhir/Practitioner").count() == 1
