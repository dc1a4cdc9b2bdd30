# ruff: noqa: F811 - fixtures imported from test_nginx_mtls are requested by name
"""Identity and trust at the edge, over real HTTP: only nginx on gunicorn's unix socket may say
who the client is; links, Location and the admin's CSRF check keep the port the client used; the
audit records the client's address; the admin is reached through nginx with Secure cookies.
"""

from __future__ import annotations

import json
import socket
import ssl

import pytest
import requests
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from requests.adapters import HTTPAdapter

from security.models import RequestAudit
from tests.e2e.nginx_support import nginx
from tests.e2e.test_nginx_mtls import (  # noqa: F401 - fixtures shared with the mTLS tests
    _as_client_a,
    _get,
    client_files,
    own_key,
    stack,
    tls,
)
from tests.factories import OrganizationFactory
from tests.servers import gunicorn, process_env, unix_socket, wait_until_serving

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JSON = "application/fhir+json"
LOGIN = "/admin/login/"
STAFF_PASSWORD = "edge trust staff password 7"
# A loopback address of its own, so the audit can tell the client's address from nginx's.
CLIENT_ADDRESS = "127.0.0.5"


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_user("ann", password=STAFF_PASSWORD, is_staff=True)


def demo_env(token_issuer) -> dict[str, str]:
    """`make demo`'s settings: dev with certificates required, the scheme from nginx, and the
    default SECURITY_TRUSTED_PROXIES (process_env drops the test process's SECURITY_*)."""
    return process_env(
        ENVIRONMENT="dev",
        SECURITY_REQUIRE_CLIENT_CERT="true",
        TRUST_X_FORWARDED_PROTO="true",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
        SECURITY_CACHE_SECONDS="0",
    )


def sign_in(
    session, base: str, password: str, verify=True, extra=None, **headers
) -> requests.Response:
    """The admin login form as a browser submits it: CSRF cookie and token from the page."""
    page = session.get(f"{base}{LOGIN}", headers=headers, verify=verify, timeout=10)
    assert page.status_code == 200, page.text
    form = {
        "username": "ann",
        "password": password,
        "next": "/admin/",
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
        **(extra or {}),
    }
    return session.post(
        f"{base}{LOGIN}",
        data=form,
        headers=headers,
        allow_redirects=False,
        verify=verify,
        timeout=10,
    )


# ---- Straight to gunicorn on loopback, as anyone on the host can -------------------------------


@pytest.fixture
def gunicorn_on_loopback(credentials, token_issuer, tmp_path):
    with gunicorn(demo_env(token_issuer), tmp_path) as (url, process):
        wait_until_serving(url, process)
        yield url


def test_a_forged_certificate_header_on_loopback_authenticates_no_one(
    gunicorn_on_loopback, credentials
):
    # Client A's public certificate, its key and token: everything but the TLS connection.
    response = requests.get(
        f"{gunicorn_on_loopback}/fhir/Organization",
        headers={**credentials.http, "Accept": JSON},
        timeout=10,
    )
    assert response.status_code == 401, response.text
    assert RequestAudit.objects.get().outcome == "cert-missing"


def test_rotating_x_forwarded_for_on_loopback_does_not_dodge_the_lockout(
    gunicorn_on_loopback, staff
):
    url = gunicorn_on_loopback
    statuses = [
        sign_in(requests.Session(), url, "wrong", **_from(f"192.0.2.{n}")).status_code
        for n in range(5)
    ]
    # The form again with an error, four times; the fifth failure locks the account here.
    assert statuses == [200, 200, 200, 200, 429]
    locked = sign_in(requests.Session(), url, STAFF_PASSWORD, **_from("192.0.2.99"))
    assert locked.status_code == 429


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


# ---- Through nginx, production ------------------------------------------------------------------


class FromAddress(HTTPAdapter):
    """Connects from a chosen local address, as a client on another host would."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def test_next_link_and_location_keep_the_port(stack, credentials, own_key, tls, client_files):
    OrganizationFactory.create_batch(2)
    edge, _, _ = stack
    headers = _as_client_a(credentials, own_key)
    cert = client_files["valid"]
    page = _get(edge, tls, "/fhir/Organization?_count=1", cert, **headers)
    assert page.status_code == 200, page.text
    (next_url,) = [link["url"] for link in page.json()["link"] if link["relation"] == "next"]
    assert next_url.startswith(f"{edge.url}/fhir/Organization?")
    following = _get(edge, tls, next_url.removeprefix(edge.url), cert, **headers)
    assert following.status_code == 200 and following.json()["entry"]

    created = requests.post(
        f"{edge.url}/fhir/Organization",
        json={"resourceType": "Organization", "name": "Harbor Clinic"},
        cert=cert,
        verify=str(tls.server_ca),
        headers={**headers, "Content-Type": JSON, "Accept": JSON},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    assert created.headers["Location"].startswith(f"{edge.url}/fhir/Organization/")


def test_the_audit_records_the_client_address_not_nginx(
    stack, credentials, own_key, tls, client_files
):
    edge, _, _ = stack
    session = requests.Session()
    session.mount("https://", FromAddress(CLIENT_ADDRESS))
    # The client's own X-Forwarded-For is replaced by nginx, never appended to.
    spoofed = {**_as_client_a(credentials, own_key), "X-Forwarded-For": "192.0.2.66"}
    response = session.get(
        f"{edge.url}/fhir/Organization",
        cert=client_files["valid"],
        verify=str(tls.server_ca),
        headers={**spoofed, "Accept": JSON},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert RequestAudit.objects.get().remote_addr == CLIENT_ADDRESS


def test_staff_sign_in_through_nginx_in_production_with_totp(stack, tls, staff):
    edge, _, _ = stack
    device = TOTPDevice.objects.create(user=staff, name="phone")
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"
    session, server_ca = requests.Session(), str(tls.server_ca)
    browser = {"Origin": edge.admin_url, "Referer": f"{edge.admin_url}{LOGIN}"}
    otp = {"otp_device": device.persistent_id, "otp_token": code}
    signed_in = sign_in(session, edge.admin_url, STAFF_PASSWORD, server_ca, otp, **browser)

    assert signed_in.status_code == 302, signed_in.text
    index = session.get(f"{edge.admin_url}/admin/", verify=server_ca, timeout=10)
    assert index.status_code == 200 and "ann" in index.text
    assert all(cookie.secure for cookie in session.cookies)


def test_the_api_port_does_not_serve_the_admin(stack, tls, client_files):
    edge, _, _ = stack
    refused = _get(edge, tls, LOGIN, client_files["valid"])
    assert refused.status_code == 404
    assert refused.json()["resourceType"] == "OperationOutcome"


# ---- Through nginx, as `make demo` runs ---------------------------------------------------------


@pytest.fixture
def demo(credentials, token_issuer, tls, tmp_path):
    app_logs = tmp_path / "gunicorn"
    app_logs.mkdir()
    env = demo_env(token_issuer)
    with unix_socket() as sock, gunicorn(env, app_logs, f"unix:{sock}") as (url, process):
        wait_until_serving(url, process)
        with nginx(tls, f"unix:{sock}", tmp_path / "nginx") as edge:
            yield edge


def test_staff_sign_in_to_the_admin_through_nginx_with_secure_cookies(demo, tls, staff):
    session, server_ca = requests.Session(), str(tls.server_ca)
    # What a browser sends with the form: Django checks Origin (and Referer) against the host.
    browser = {"Origin": demo.admin_url, "Referer": f"{demo.admin_url}{LOGIN}"}
    signed_in = sign_in(session, demo.admin_url, STAFF_PASSWORD, server_ca, **browser)

    assert signed_in.status_code == 302, signed_in.text
    assert signed_in.headers["Location"] == "/admin/"
    index = session.get(f"{demo.admin_url}/admin/", verify=server_ca, timeout=10)
    assert index.status_code == 200 and "ann" in index.text
    cookies = {cookie.name: cookie for cookie in session.cookies}
    assert {"csrftoken", "sessionid"} <= set(cookies)
    assert all(cookie.secure for cookie in cookies.values())


def test_the_admin_port_serves_no_api(demo, tls, client_files, credentials):
    response = requests.get(
        f"{demo.admin_url}/fhir/Organization",
        cert=client_files["valid"],
        verify=str(tls.server_ca),
        headers={**credentials.http, "Accept": JSON},
        timeout=10,
    )
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert not RequestAudit.objects.exists(), "nothing reached the app"


def test_a_request_without_host_still_gets_links_to_this_server(stack, tls, client_files):
    """HTTP/1.0 needs no Host header: nginx then names its own server, never an empty host."""
    edge, _, _ = stack
    context = ssl.create_default_context(cafile=str(tls.server_ca))
    context.load_cert_chain(*client_files["valid"])
    with (
        socket.create_connection(("127.0.0.1", edge.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        conn.sendall(b"GET /fhir/metadata HTTP/1.0\r\nAccept: application/fhir+json\r\n\r\n")
        reply = b"".join(iter(lambda: conn.recv(65536), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(body)["implementation"]["url"].startswith("https://localhost/fhir")
