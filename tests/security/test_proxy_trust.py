"""Only configured TLS terminators may pass a client certificate; anyone else's header is gone."""

import pytest
import requests
from django.test import RequestFactory

from security.middleware.proxy import TrustedProxyMiddleware, is_trusted_proxy
from security.refusal import REASONS

from .conftest import LIVE_DB
from .pki import cert_headers, http_headers

METADATA = "/fhir/metadata"


@pytest.mark.parametrize(
    ("proxies", "remote_addr", "trusted"),
    [
        (["127.0.0.1/32"], "127.0.0.1", True),
        (["127.0.0.1/32"], "127.0.0.2", False),
        (["10.0.0.0/8"], "10.20.30.40", True),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),  # IPv4 peer on a dual-stack socket
        (["fd00::/8"], "fd00::1%eth0", True),
        (["fd00::/8"], "fe80::1", False),
        (["127.0.0.1/32"], "", False),  # unix socket, not configured
        (["127.0.0.1/32"], "/run/gunicorn.sock", False),
        (["unix"], "", True),
        (["unix"], "/run/gunicorn.sock", True),
        (["unix"], "127.0.0.1", False),
        (["not-a-cidr", "127.0.0.1/32"], "127.0.0.1", True),
        (["not-a-cidr"], "not-a-cidr", False),
        ([], "127.0.0.1", False),
    ],
)
def test_is_trusted_proxy(settings, proxies, remote_addr, trusted):
    settings.SECURITY_TRUSTED_PROXIES = proxies
    assert is_trusted_proxy(remote_addr) is trusted


def run_proxy_check(remote_addr, meta, path=METADATA):
    request = RequestFactory().get(path, REMOTE_ADDR=remote_addr, **meta)
    response = TrustedProxyMiddleware(lambda r: "passed")(request)
    return request, response


@pytest.mark.parametrize("fmt", ["nginx", "ingress-nginx", "envoy", "traefik", "aws-alb"])
def test_headers_of_every_format_are_stripped_from_untrusted_peers(settings, pki, fmt):
    settings.ENVIRONMENT = "dev"
    meta = {**cert_headers(pki.valid, fmt), "HTTP_X_AMZN_MTLS_CLIENTCERT_LEAF": "x"}
    request, response = run_proxy_check("203.0.113.9", meta)
    assert response == "passed"
    assert request.security.from_trusted_proxy is False
    assert not [k for k in request.META if "CLIENT" in k or "MTLS" in k]


def test_headers_from_trusted_proxy_are_kept(pki):
    request, response = run_proxy_check("127.0.0.1", cert_headers(pki.valid))
    assert response == "passed"
    assert request.security.from_trusted_proxy is True
    assert "HTTP_X_SSL_CLIENT_CERT" in request.META


def test_non_api_paths_are_stripped_but_not_refused(settings, pki):
    settings.ENVIRONMENT = "prod"
    request, response = run_proxy_check("203.0.113.9", cert_headers(pki.valid), "/admin/")
    assert response == "passed"
    assert "HTTP_X_SSL_CLIENT_CERT" not in request.META


# --- Over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def untrusted(settings):
    """The live server's peer (127.0.0.1) is no longer a trusted proxy."""
    settings.SECURITY_TRUSTED_PROXIES = ["192.0.2.0/24"]


@LIVE_DB
def test_forged_header_from_untrusted_peer_is_refused(cert_server, untrusted, cert_client, pki):
    response = requests.get(cert_server + METADATA, headers=http_headers(pki.valid), timeout=10)
    reason = REASONS["proxy-untrusted"]
    assert response.status_code == reason.status == 403
    assert response.json()["issue"][0]["diagnostics"] == reason.message
    assert response.headers["X-Test-Outcome"] == "proxy-untrusted"
    assert response.headers["X-Test-Trusted-Proxy"] == "False"
    assert response.headers["X-Test-Client"] == ""
    assert response.headers["X-Test-Cert-Headers-Left"] == "0"


@LIVE_DB
def test_untrusted_peer_refused_even_without_header(cert_server, untrusted):
    response = requests.get(cert_server + METADATA, timeout=10)
    assert response.headers["X-Test-Outcome"] == "proxy-untrusted"


@LIVE_DB
def test_forged_header_in_dev_is_ignored_not_used(
    cert_server, untrusted, settings, cert_client, pki
):
    settings.ENVIRONMENT = "dev"
    settings.SECURITY_REQUIRE_CLIENT_CERT = False
    response = requests.get(cert_server + METADATA, headers=http_headers(pki.valid), timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Test-Client"] == ""  # the forged certificate named no one
    assert response.headers["X-Test-Fingerprint"] == ""
    assert response.headers["X-Test-Cert-Headers-Left"] == "0"


@LIVE_DB
def test_forged_header_in_dev_with_certificates_required(
    cert_server, untrusted, settings, cert_client, pki
):
    settings.ENVIRONMENT = "dev"
    response = requests.get(cert_server + METADATA, headers=http_headers(pki.valid), timeout=10)
    assert response.status_code == 401
    assert response.headers["X-Test-Outcome"] == "cert-missing"


@LIVE_DB
def test_trusted_peer_headers_reach_the_checks(cert_server, cert_client, pki):
    response = requests.get(cert_server + METADATA, headers=http_headers(pki.valid), timeout=10)
    assert response.headers["X-Test-Trusted-Proxy"] == "True"
    assert response.headers["X-Test-Cert-Headers-Left"] == "2"
    assert response.headers["X-Test-Client"] == "Client A"


FORWARDED = {
    "HTTP_X_FORWARDED_FOR": "192.0.2.66",
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_HOST": "evil.example",
    "HTTP_X_FORWARDED_PORT": "443",
    "HTTP_X_REAL_IP": "192.0.2.66",
    "HTTP_FORWARDED": "for=192.0.2.66;proto=https",
}


@pytest.mark.parametrize("path", [METADATA, "/admin/login/"])
def test_forwarding_headers_from_untrusted_peers_are_stripped(settings, path):
    settings.ENVIRONMENT = "dev"
    request, _ = run_proxy_check("203.0.113.9", FORWARDED, path)
    assert not set(FORWARDED) & set(request.META)
    assert request.security.remote_addr == "203.0.113.9"


def test_forwarding_headers_from_the_trusted_proxy_are_kept():
    request, _ = run_proxy_check("127.0.0.1", FORWARDED)
    assert set(FORWARDED) <= set(request.META)
    assert request.security.remote_addr == "192.0.2.66", "the client nginx forwarded for"


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "127.0.0.2"])
def test_by_default_no_loopback_peer_is_a_proxy(settings, pki, peer):
    """Anyone on the host reaches loopback: by default only the unix socket is nginx."""
    settings.SECURITY_TRUSTED_PROXIES = ["unix"]  # the default (test_startup reads it)
    settings.ENVIRONMENT = "dev"
    request, _ = run_proxy_check(peer, {**cert_headers(pki.valid), **FORWARDED})
    assert request.security.from_trusted_proxy is False
    assert "HTTP_X_SSL_CLIENT_CERT" not in request.META
    assert request.security.remote_addr == peer
