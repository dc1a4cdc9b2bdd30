"""Through a real gunicorn with our config and logger class: no credential in any log file."""

from __future__ import annotations

import pytest
import requests

from security.keys import issue_key
from security.models import ApiClient
from security.redaction import MARKER

from .test_redaction import JWT, OPAQUE_TOKEN, SHORT_BAD_KEY, secret_part
from .test_startup import all_logs, gunicorn, process_env, wait_until_serving

pytestmark = pytest.mark.django_db(transaction=True)


def _send_requests_with_secrets(url: str, key: str) -> list[int]:
    """Good and bad requests carrying the key and tokens in every place a client might put them."""
    keyed = {"X-API-Key": key, "Accept": "application/fhir+json"}
    sent = [
        requests.get(f"{url}/fhir/Practitioner", headers=keyed, timeout=10),
        requests.get(f"{url}/fhir/Practitioner?name=x&apikey={key}", timeout=10),
        requests.get(f"{url}/fhir/Practitioner?APIKEY%3D{key}", timeout=10),
        requests.get(
            f"{url}/fhir/Organization", headers={"Authorization": f"Bearer {JWT}"}, timeout=10
        ),
        requests.get(
            f"{url}/fhir/Organization/{key}",
            headers={"Authorization": f"Bearer {OPAQUE_TOKEN}", "Referer": f"/x?apikey={key}"},
            timeout=10,
        ),
        requests.get(
            f"{url}/fhir/Nope?apikey={SHORT_BAD_KEY}",
            headers={"X-API-Key": SHORT_BAD_KEY, "User-Agent": f"agent {JWT}"},
            timeout=10,
        ),
        requests.post(f"{url}/fhir/Organization?apikey={key}", data=b"{broken", timeout=10),
        requests.get(f"{url}/readyz?apikey={key}", timeout=10),
    ]
    return [response.status_code for response in sent]


def test_no_secret_in_gunicorn_access_error_or_django_logs(tmp_path):
    client = ApiClient.objects.create(name="Gunicorn Clinic")
    _, key = issue_key(client, "test")
    with gunicorn(process_env(ENVIRONMENT="test", LOG_LEVEL="DEBUG"), tmp_path) as (url, process):
        wait_until_serving(url, process)
        statuses = _send_requests_with_secrets(url, key)
    assert 404 in statuses and 200 in statuses

    access = (tmp_path / "access.log").read_text()
    assert access.count("/fhir/") >= 7, "every request is in the access log"
    assert f"apikey={MARKER}" in access
    logs = all_logs(tmp_path)
    assert "Not Found: /fhir/Organization/fdk_" in logs, "Django's own log lines are there too"
    for secret in (key, secret_part(key), JWT, OPAQUE_TOKEN, SHORT_BAD_KEY):
        assert secret not in logs
    assert MARKER in logs


def test_access_log_leaves_out_headers(tmp_path):
    with gunicorn(process_env(ENVIRONMENT="test"), tmp_path) as (url, process):
        wait_until_serving(url, process)
        requests.get(f"{url}/healthz", headers={"User-Agent": "agent-007-marker"}, timeout=10)
    access = (tmp_path / "access.log").read_text()
    assert '"GET /healthz HTTP/1.1" 200' in access
    assert "agent-007-marker" not in access
