"""Through a real gunicorn with our config and logger class: no credential in any log file."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
import requests

from security.redaction import MARKER, canonical
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
    with gunicorn(
        process_env(ENVIRONMENT="test", SECURITY_TRUSTED_PROXIES="127.0.0.1/32"), tmp_path
    ) as (url, process):
        wait_until_serving(url, process)
        requests.get(f"{url}/healthz", headers={"User-Agent": "agent-007-marker"}, timeout=10)
    access = (tmp_path / "access.log").read_text()
    assert '"GET /healthz HTTP/1.1" 200' in access
    assert "agent-007-marker" not in access


def test_a_custom_format_naming_credential_headers_writes_markers(
    tmp_path, credentials, token_issuer
):
    """Only the atoms a format names are built; those it names are still redacted."""
    log_format = (
        '"%(r)s" %(s)s key=%({X-API-Key}i)s auth=%({authorization}i)s'
        " agent=%({user-agent}i)s env=%({http_x_api_key}e)s"
    )
    env = process_env(
        ENVIRONMENT="test",
        SECURITY_TRUSTED_PROXIES="127.0.0.1/32",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
        GUNICORN_ACCESS_LOG_FORMAT=log_format,
    )
    headers = {
        **credentials.http,
        "Accept": "application/fhir+json",
        "User-Agent": "agent-custom-format",
    }
    with gunicorn(env, tmp_path) as (url, process):
        wait_until_serving(url, process)
        ok = requests.get(
            f"{url}/fhir/Practitioner?apikey={credentials.api_key}", headers=headers, timeout=10
        )
    assert ok.status_code == 200
    line = next(
        line
        for line in (tmp_path / "access.log").read_text().splitlines()
        if "/fhir/Practitioner" in line
    )
    assert f"key={MARKER} auth={MARKER}" in line
    assert f"env={MARKER}" in line
    assert "agent=agent-custom-format" in line, "a named header atom is still written"
    assert f"apikey={MARKER}" in line
    for secret in (credentials.api_key, secret_part(credentials.api_key), credentials.token):
        assert secret not in line


def _escape_all(text: str) -> str:
    """Every character percent-encoded, hex digits in mixed case."""
    escapes = (f"%{ord(char):02X}" for char in text)
    return "".join(e.lower() if i % 2 else e for i, e in enumerate(escapes))


def _raw_get(url: str, target: str, headers: dict) -> int:
    """A GET with the request target sent byte for byte: `requests` would normalise escapes."""
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    try:
        connection.request("GET", target, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_key_in_any_encoding_the_app_accepts_reaches_no_log(tmp_path, credentials, token_issuer):
    key = credentials.api_key
    _, prefix, secret = key.split("_", 2)
    no_key = {k: v for k, v in credentials.http.items() if k != "X-API-Key"}
    no_key["Accept"] = "application/fhir+json"
    accepted = [
        f"/fhir/Organization?%61pikey=fdk%5F{prefix}%5F{secret}",
        f"/fhir/Organization?_count=1&{_escape_all('apikey')}={_escape_all(key)}",
        f"/fhir/Organization?api%6bey=%66dk_{prefix}_{secret}&_count=2",
        f"/fhir/Organization?apikey=+{key}+",
    ]
    refused_but_secret = [
        f"/fhir/Organization/fdk%5F{prefix}%5F{secret}",
        f"/fhir/Organization?x=%252Ffhir%253F%2561pikey%253D{secret}%2526y%253D1",
    ]
    env = process_env(
        ENVIRONMENT="test",
        # The test sends the certificate header as nginx would, from loopback.
        SECURITY_TRUSTED_PROXIES="127.0.0.1/32",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
    )
    with gunicorn(env, tmp_path) as (url, process):
        wait_until_serving(url, process)
        statuses = [_raw_get(url, target, no_key) for target in accepted]
        for target in refused_but_secret:
            _raw_get(url, target, {**no_key, "Referer": f"{url}{accepted[0]}"})
    assert statuses == [200] * len(accepted), "the app decoded each spelling to its key"

    access = (tmp_path / "access.log").read_text()
    assert access.count("GET /fhir/Organization") == len(accepted) + len(refused_but_secret)
    logs = all_logs(tmp_path)
    for text in (logs, canonical(logs)):
        assert secret not in text and secret[:16] not in text and secret[-16:] not in text
    assert MARKER in access
