"""Through a real gunicorn with our config and logger class: no credential in any log file."""

from __future__ import annotations

import pytest
import requests

from security.redaction import MARKER
from tests.servers import all_logs, gunicorn, process_env, wait_until_serving

from .test_redaction import JWT, OPAQUE_TOKEN, SHORT_BAD_KEY, secret_part

pytestmark = pytest.mark.django_db(transaction=True)


def _send_requests_with_secrets(url: str, credentials) -> list[int]:
    """Good and bad requests carrying the key and tokens in every place a client might put them."""
    key = credentials.api_key
    good = {**credentials.http, "Accept": "application/fhir+json"}
    no_key = {name: value for name, value in good.items() if name != "X-API-Key"}
    sent = [
        requests.get(f"{url}/fhir/Practitioner", headers=good, timeout=10),
        requests.get(f"{url}/fhir/Practitioner?name=x&apikey={key}", headers=no_key, timeout=10),
        requests.get(f"{url}/fhir/Practitioner?APIKEY%3D{key}", headers=no_key, timeout=10),
        requests.get(
            f"{url}/fhir/Organization",
            headers={**good, "Authorization": f"Bearer {JWT}"},
            timeout=10,
        ),
        requests.get(
            f"{url}/fhir/Organization/{key}",
            headers={**good, "Referer": f"/x?apikey={key}"},
            timeout=10,
        ),
        requests.get(
            f"{url}/fhir/Organization",
            headers={**good, "Authorization": f"Bearer {OPAQUE_TOKEN}"},
            timeout=10,
        ),
        requests.get(
            f"{url}/fhir/Nope?apikey={SHORT_BAD_KEY}",
            headers={"X-API-Key": SHORT_BAD_KEY, "User-Agent": f"agent {JWT}"},
            timeout=10,
        ),
        requests.post(
            f"{url}/fhir/Organization?apikey={key}", data=b"{broken", headers=no_key, timeout=10
        ),
        requests.get(f"{url}/readyz?apikey={key}", timeout=10),
    ]
    return [response.status_code for response in sent]


def test_no_secret_in_gunicorn_access_error_or_django_logs(tmp_path, credentials, token_issuer):
    env = process_env(
        ENVIRONMENT="test",
        SECURITY_TRUSTED_PROXIES="127.0.0.1/32",  # the test sends as nginx would
        LOG_LEVEL="DEBUG",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
    )
    with gunicorn(env, tmp_path) as (url, process):
        wait_until_serving(url, process)
        statuses = _send_requests_with_secrets(url, credentials)
    assert {200, 401, 404} <= set(statuses)

    access = (tmp_path / "access.log").read_text()
    assert access.count("/fhir/") >= 8, "every request is in the access log"
    assert f"apikey={MARKER}" in access
    logs = all_logs(tmp_path)
    assert "Not Found: /fhir/Organization/fdk_" in logs, "Django's own log lines are there too"
    key, token = credentials.api_key, credentials.token
    for secret in (key, secret_part(key), token, JWT, OPAQUE_TOKEN, SHORT_BAD_KEY):
        assert secret not in logs
    assert MARKER in logs


def test_access_log_leaves_out_headers(tmp_path):
    with gunicorn(process_env(ENVIRONMENT="test"), tmp_path) as (url, process):
        wait_until_serving(url, process)
        requests.get(f"{url}/healthz", headers={"User-Agent": "agent-007-marker"}, timeout=10)
    access = (tmp_path / "access.log").read_text()
    assert '"GET /healthz HTTP/1.1" 200' in access
    assert "agent-007-marker" not in access
