"""The authorization server while the database cannot answer: 503 to retry, never a verdict."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

from security.oauth import views


@pytest.fixture
def oauth_on(settings, db):
    settings.OAUTH_SERVER_URL = "https://directory.example.org"
    settings.RETRY_AFTER_SECONDS = 7


def _database_down(*args, **kwargs):
    raise OperationalError("connection refused")


@pytest.mark.parametrize(
    "path, target, body, content_type",
    [
        ("/oauth/token", "token_response", "grant_type=x", "application/x-www-form-urlencoded"),
        ("/oauth/register", "_json_body", "{}", "application/json"),
    ],
)
def test_database_outage_is_a_503_to_retry(oauth_on, monkeypatch, path, target, body, content_type):
    monkeypatch.setattr(views, target, _database_down)
    response = Client().post(path, body, content_type=content_type)
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable"}
    assert response["Retry-After"] == "7"
    assert response["Cache-Control"] == "no-store"
