"""The health probes: no client certificate, no key, and nothing revealed but up or down."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from django.test import Client

from security.middleware.base import CheckMiddleware
from security.refusal import Refusal

HEADERS_MIDDLEWARE = "security.middleware.headers.SecurityHeadersMiddleware"
AUDIT_MIDDLEWARE = "security.middleware.audit.AuditMiddleware"


class RefuseEverythingMiddleware(CheckMiddleware):
    """Test only: stands in for the certificate check, refusing every request it applies to."""

    def check(self, request, context):
        raise Refusal("cert-missing")


@pytest.fixture
def guarded(settings):
    """The security chain with a check that refuses all requests it applies to."""
    settings.MIDDLEWARE = [
        HEADERS_MIDDLEWARE,
        AUDIT_MIDDLEWARE,
        f"{__name__}.RefuseEverythingMiddleware",
        *settings.MIDDLEWARE[1:],
    ]
    return Client()


@pytest.mark.django_db
def test_liveness_answers_without_any_credential(guarded):
    assert guarded.get("/fhir/metadata").status_code == 401, "the checks are in force"
    response = guarded.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_answers_when_the_database_does(guarded):
    response = guarded.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_is_503_when_the_database_does_not_answer(guarded, monkeypatch, caplog):
    def no_database(*args, **kwargs):
        raise OperationalError("could not connect to server db.internal.example:5432")

    monkeypatch.setattr("config.health.connection.cursor", no_database)
    response = guarded.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert "db.internal.example" not in response.content.decode()
    assert "database did not answer" in caplog.text, "the operator learns why from the log"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_probes_reveal_nothing(guarded, url):
    import socket

    import django

    response = guarded.get(url)
    text = json.dumps(dict(response.headers)) + response.content.decode()
    assert django.get_version() not in text
    assert socket.gethostname() not in text
    assert not any(ch.isdigit() for ch in response.content.decode())


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_probes_only_answer_reads(guarded, url):
    assert guarded.post(url).status_code == 405
    assert guarded.head(url).status_code == 200


@pytest.mark.django_db
def test_probes_are_not_audited(guarded):
    from security.models import RequestAudit

    guarded.get("/healthz")
    guarded.get("/readyz")
    assert not RequestAudit.objects.exists()
