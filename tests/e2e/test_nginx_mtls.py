"""Mutual TLS end to end: real nginx with deploy/nginx/ in front of a real PROD gunicorn.

nginx is the first gate: TLS 1.2+ with forward-secret AES-GCM suites only, a client certificate
chained to a community anchor and absent from the CRLs, refusals as FHIR OperationOutcomes. It
passes the verified certificate upstream and nothing a client wrote in its place. Secrets in the
query string reach no log of either server.
"""

from __future__ import annotations

import ssl
import time
import warnings

import pytest
import requests

from directory.models import Resource
from security import clients, keys
from security.models import RequestAudit
from tests.credentials import ALL_SCOPES
from tests.e2e.nginx_support import (
    handshake,
    logs_text,
    nginx,
    require_nginx,
    write_client,
    write_tls_files,
)
from tests.factories import OrganizationFactory
from tests.fhirapi.test_transactions import bundle, org, post
from tests.fhirapi.test_transactions_together import practitioners_and_roles
from tests.logcapture import SECRET_CHARS
from tests.security.pki import CLIENT_B_DNS, http_headers
from tests.security.trust import register_community
from tests.servers import free_port, gunicorn, unix_socket, wait_until_serving

pytestmark = pytest.mark.e2e

JSON = "application/fhir+json"
REFUSED_LEAVES = ("unknown_leaf", "expired", "not_yet_valid", "revoked", "wrong_eku")


@pytest.fixture(scope="module", autouse=True)
def _nginx_installed():
    require_nginx()


@pytest.fixture(scope="module")
def tls(pki, tmp_path_factory):
    return write_tls_files(pki, tmp_path_factory.mktemp("nginx-tls"))


@pytest.fixture(scope="module")
def client_files(pki, tmp_path_factory):
    """Certificate and key files of every test client, by the PKI attribute that names them."""
    directory = tmp_path_factory.mktemp("nginx-clients")
    names = ("valid", "valid_b", *REFUSED_LEAVES)
    return {name: write_client(getattr(pki, name), directory, name) for name in names}


@pytest.fixture(scope="module")
def edge_alone(tls, tmp_path_factory):
    """nginx whose upstream is a port nobody listens on: whatever it answers, it answered itself."""
    with nginx(tls, f"127.0.0.1:{free_port()}", tmp_path_factory.mktemp("nginx-alone")) as edge:
        yield edge


def _get(edge, tls, path, cert=None, **headers):
    return requests.get(
        f"{edge.url}{path}",
        cert=cert,
        verify=str(tls.server_ca),
        headers={"Accept": JSON, **headers},
        timeout=10,
    )


def _outcome(response, status, code):
    assert response.status_code == status, response.text
    # The app adds "; charset=utf-8" to some responses, nginx to none.
    assert response.headers["Content-Type"].split(";")[0] == JSON
    assert response.headers["Cache-Control"] == "no-store"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code


def _access_line(edge, text: str, seconds: float = 5) -> str:
    """The access log line containing `text`; nginx writes it just after the response."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = (edge.logs / "fhir-access.log").read_text().splitlines()
        found = [line for line in lines if text in line]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no access log line with {text!r}")


# ---- nginx alone: handshakes and refusals -------------------------------------------------------


def test_no_client_certificate_is_refused_even_with_forged_headers(edge_alone, tls, pki):
    forged = http_headers(pki.valid) | http_headers(pki.valid, fmt="envoy")
    for headers in ({}, forged):
        _outcome(_get(edge_alone, tls, "/fhir/Organization", **headers), 401, "login")
    _outcome(_get(edge_alone, tls, "/healthz"), 401, "login")


@pytest.mark.parametrize("leaf", REFUSED_LEAVES)
def test_certificate_nginx_cannot_verify_is_refused(edge_alone, tls, client_files, leaf):
    _outcome(_get(edge_alone, tls, "/fhir/Organization", client_files[leaf]), 403, "security")


def test_revocation_is_nginx_own_crl_check(edge_alone, tls, client_files):
    _get(edge_alone, tls, "/fhir/Organization", client_files["revoked"])
    assert "CN=Revoked A" in _access_line(edge_alone, 'verify="FAILED:certificate revoked"')


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_before_1_2_is_refused_by_the_server(edge_alone, tls, version):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the old versions are the point
        with pytest.raises(ssl.SSLError) as refused:
            # SECLEVEL=0 lets this client offer the old versions; only the server can refuse.
            old = {"minimum": version, "maximum": version, "ciphers": "DEFAULT:@SECLEVEL=0"}
            handshake(edge_alone.port, tls.server_ca, **old)
    assert "PROTOCOL_VERSION" in str(refused.value)


@pytest.mark.parametrize(
    "cipher",
    [
        "ECDHE-ECDSA-AES128-SHA",  # CBC
        "ECDHE-ECDSA-AES256-SHA384",  # CBC
        "ECDHE-ECDSA-CHACHA20-POLY1305",  # AEAD, but not in the policy
    ],
)
def test_cipher_outside_the_policy_is_refused(edge_alone, tls, cipher):
    # Each is one the EC server key could use, so only the policy can turn it down (a suite
    # without ECDHE, such as AES128-GCM-SHA256, needs an RSA key and would prove nothing).
    tls12 = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError, match="ALERT_HANDSHAKE_FAILURE"):
        handshake(edge_alone.port, tls.server_ca, maximum=tls12, ciphers=cipher)


@pytest.mark.parametrize(
    "cipher", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"]
)
def test_approved_tls_1_2_cipher_is_accepted(edge_alone, tls, cipher):
    tls12 = ssl.TLSVersion.TLSv1_2
    assert handshake(edge_alone.port, tls.server_ca, maximum=tls12, ciphers=cipher) == (
        "TLSv1.2",
        cipher,
    )


def test_tls_1_3_uses_an_aes_gcm_suite(edge_alone, tls):
    version, cipher = handshake(edge_alone.port, tls.server_ca)
    assert version == "TLSv1.3"
    assert cipher in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384")


def test_oversized_body_is_refused_before_the_app(edge_alone, tls, client_files):
    response = requests.post(
        f"{edge_alone.url}/fhir/Organization",
        data=b"x" * (1_048_576 + 1),
        cert=client_files["valid"],
        verify=str(tls.server_ca),
        headers={"Content-Type": JSON},
        timeout=10,
    )
    _outcome(response, 413, "too-long")
    assert "upstream=-/-" in _access_line(edge_alone, 'POST /fhir/Organization HTTP/1.1" 413')


def test_plain_http_on_the_tls_port_is_an_outcome(edge_alone):
    plain = requests.get(f"http://localhost:{edge_alone.port}/fhir/metadata", timeout=10)
    _outcome(plain, 400, "invalid")


def test_static_files_carry_the_security_headers(edge_alone, tls, client_files):
    (edge_alone.static / "admin.css").write_text("body { color: black; }\n")
    response = _get(edge_alone, tls, "/static/admin.css", client_files["valid"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/css"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_unavailable_app_is_an_outcome_and_the_query_stays_out_of_the_logs(
    edge_alone, tls, client_files
):
    secret = "fdk_nginxalone_" + "q" * 43
    path = f"/fhir/Organization?apikey={secret}"
    _outcome(_get(edge_alone, tls, path, client_files["valid"]), 503, "transient")
    _access_line(edge_alone, '" 503 ')
    assert secret not in logs_text(edge_alone.logs)


def test_the_log_check_would_see_a_leak_at_error_level(tls, client_files, tmp_path):
    """The error level is what keeps the query string out: one step lower, the request line with
    its query string is logged on an upstream failure."""

    def error_level(site: str) -> str:
        assert site.count(" alert;") == 1
        return site.replace(" alert;", " error;")

    secret = "fdk_errorlevel_" + "q" * 43
    with nginx(tls, f"127.0.0.1:{free_port()}", tmp_path, edit=error_level) as edge:
        _get(edge, tls, f"/fhir/Organization?apikey={secret}", client_files["valid"])
    assert secret in logs_text(edge.logs)


# ---- nginx in front of a PROD gunicorn -----------------------------------------------------------


@pytest.fixture
def stack(production, credentials, tls, tmp_path):
    """(nginx edge, gunicorn process, directory of every log); PROD refuses to start without
    the trust anchors the credentials fixture registers."""
    app_logs = tmp_path / "gunicorn"
    app_logs.mkdir()
    with unix_socket() as sock, gunicorn(production, app_logs, f"unix:{sock}") as (url, process):
        wait_until_serving(url, process)
        with nginx(tls, f"unix:{sock}", tmp_path / "nginx") as edge:
            yield edge, process, tmp_path


@pytest.fixture
def own_key(production, credentials):
    """A key issued under the PROD pepper (the credentials fixture's key predates it)."""
    client = clients.ApiClient.objects.get(name=credentials.client_name)
    return keys.issue_key(client, actor="tests")[1]


def _as_client_a(credentials, key):
    return {"X-API-Key": key, "Authorization": f"Bearer {credentials.token}"}


@pytest.mark.django_db(transaction=True)
def test_valid_client_gets_data_through_nginx(stack, credentials, own_key, tls, client_files):
    OrganizationFactory.create(name="Harbor Clinic")
    edge, _, _ = stack
    headers = _as_client_a(credentials, own_key)
    response = _get(edge, tls, "/fhir/Organization?name=harbor", client_files["valid"], **headers)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["total"] == 1
    for probe in ("/healthz", "/readyz"):
        assert _get(edge, tls, probe, client_files["valid"]).status_code == 200
    audit = RequestAudit.objects.get()
    assert (audit.outcome, audit.client_name) == ("ok", credentials.client_name)


@pytest.mark.django_db(transaction=True)
def test_forged_certificate_headers_never_authenticate(
    stack, credentials, own_key, pki, tls, client_files
):
    client_b = clients.create_client(
        "Client B", community=register_community(pki.b), allowed_scopes=ALL_SCOPES, actor="tests"
    )
    clients.add_identity(client_b, "dns", value=CLIENT_B_DNS, actor="tests")
    key_b = keys.issue_key(client_b, actor="tests")[1]
    forged_b = http_headers(pki.valid_b) | {
        "X-Forwarded-Client-Cert": http_headers(pki.valid_b, fmt="envoy")[
            "X-Forwarded-Client-Cert"
        ],
        "Ssl-Client-Cert": http_headers(pki.valid_b)["X-SSL-Client-Cert"],
    }
    edge, _, _ = stack
    cert_a = client_files["valid"]

    as_a = _get(
        edge, tls, "/fhir/Organization", cert_a, **_as_client_a(credentials, own_key), **forged_b
    )
    assert as_a.status_code == 200, as_a.text
    # B's own key with B's forged certificate: the app still sees A's certificate, so B's key
    # belongs to another client (answered like an unknown key; the audit tells them apart).
    with_b_key = _as_client_a(credentials, key_b) | forged_b
    _outcome(_get(edge, tls, "/fhir/Organization", cert_a, **with_b_key), 401, "login")
    _outcome(_get(edge, tls, "/fhir/Organization", None, **with_b_key), 401, "login")

    audits = list(RequestAudit.objects.order_by("id").values_list("outcome", "client_name"))
    assert audits[0] == ("ok", credentials.client_name)
    assert audits[1][0] == "key-wrong-client"
    assert len(audits) == 2, "the request without a certificate must stop at nginx"
    assert not RequestAudit.objects.filter(client_name="Client B").exists()


@pytest.mark.django_db(transaction=True)
def test_api_key_in_the_url_reaches_no_log(stack, credentials, own_key, tls, client_files):
    OrganizationFactory.create(name="Harbor Clinic")
    edge, gunicorn_process, log_root = stack
    bearer = {"Authorization": f"Bearer {credentials.token}"}
    cert_a = client_files["valid"]
    wrong = "fdk_" + own_key[4:-SECRET_CHARS] + "w" * SECRET_CHARS
    found = _get(edge, tls, f"/fhir/Organization?name=harbor&apikey={own_key}", cert_a, **bearer)
    assert found.status_code == 200, found.text
    _outcome(_get(edge, tls, f"/fhir/Organization?apikey={wrong}", cert_a, **bearer), 401, "login")
    _outcome(_get(edge, tls, f"/fhir/Organization?apikey={own_key}", None, **bearer), 401, "login")
    # With the app gone nginx answers on its own, and its error log is where a request line goes.
    gunicorn_process.terminate()
    gunicorn_process.wait(timeout=30)
    gone = _get(edge, tls, f"/fhir/Organization?apikey={own_key}", cert_a, **bearer)
    _outcome(gone, 503, "transient")
    _access_line(edge, '" 503 ')  # every request logged before the logs are read

    logs = logs_text(log_root)
    assert 'GET /fhir/Organization HTTP/1.1" 200' in logs, "the access log must record requests"
    for secret in (own_key, own_key[-SECRET_CHARS:], wrong, credentials.token):
        assert secret not in logs


@pytest.mark.django_db(transaction=True)
def test_transaction_bundles_through_mutual_tls(
    stack, credentials, own_key, token_issuer, tls, client_files
):
    """A transaction as a deployed client sends it: TLS with its certificate to nginx, the PROD
    app behind; all or nothing holds there too, and a narrower token stores nothing."""
    edge, _, _ = stack
    headers = _as_client_a(credentials, own_key) | {"Content-Type": JSON, "Accept": JSON}

    def send(body: dict, **extra: str) -> requests.Response:
        return requests.post(
            f"{edge.url}/fhir",
            json=body,
            cert=client_files["valid"],
            verify=str(tls.server_ca),
            headers=headers | extra,
            timeout=30,
        )

    orgs_only = f"Bearer {token_issuer.mint(scope='system/Organization.cruds')}"
    _outcome(send(practitioners_and_roles(50), Authorization=orgs_only), 403, "forbidden")
    failing = practitioners_and_roles(50)
    failing["entry"].append(post({"resourceType": "Organization", "active": True}))  # org-1
    _outcome(send(failing), 422, "invariant")
    assert not Resource.objects.exists()

    stored = send(practitioners_and_roles(50))
    assert stored.status_code == 200, stored.text
    assert stored.headers["Cache-Control"] == "no-store"
    answers = stored.json()["entry"]
    assert [a["response"]["status"] for a in answers] == ["201 Created"] * 100
    assert all(a["fullUrl"].startswith(f"{edge.url}/fhir/") for a in answers)
    assert Resource.objects.count() == 100
    assert send(bundle("transaction", post(org("Y"))), Authorization=orgs_only).status_code == 200
    outcomes = RequestAudit.objects.order_by("id").values_list("outcome", flat=True)
    assert list(outcomes) == ["scope-missing", "ok", "ok", "ok"]
