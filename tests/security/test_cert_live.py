"""Client certificates end to end: real HTTP requests through the live server, with the headers
set as the TLS terminator would set them. X-Test-* headers (ContextEchoMiddleware) expose the
audit reason code and the identified client."""

import time

import pytest
import requests

from security.models import ApiClient, CertificateIdentity, RevocationList, TrustCommunity
from security.refusal import REASONS

from .conftest import LIVE_DB
from .pki import CLIENT_A_DNS, CLIENT_B_DNS, encode_cert_header, http_headers
from .trust import register_client, store_crl

METADATA = "/fhir/metadata"
pytestmark = LIVE_DB
FORMATS = ["nginx", "ingress-nginx", "envoy", "traefik", "aws-alb"]


def get(server, headers=None, path=METADATA):
    return requests.get(server + path, headers=headers or {}, timeout=10)


def assert_refused(response, code):
    reason = REASONS[code]
    assert response.status_code == reason.status, response.text
    assert response.headers["X-Test-Outcome"] == code
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == reason.issue_code
    assert body["issue"][0]["diagnostics"] == reason.message
    assert response.headers["X-Test-Client"] == ""


def assert_ok(response, client="Client A", community="community-a"):
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "CapabilityStatement"
    assert response.headers["X-Test-Outcome"] == "ok"
    assert response.headers["X-Test-Client"] == client
    assert response.headers["X-Test-Community"] == community


# --- Every proxy format -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_with_chain(cert_server, cert_client, pki, settings, fmt):
    settings.SECURITY_CLIENT_CERT_FORMAT = fmt
    response = get(cert_server, http_headers(pki.valid, fmt, chain=[pki.a.intermediate]))
    assert_ok(response)
    assert response.headers["X-Test-Fingerprint"] == pki.valid.fingerprint
    assert response.headers["X-Test-Subject"] == pki.valid.subject


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_leaf_only_completed_by_registered_intermediate(
    cert_server, cert_client, pki, settings, fmt
):
    settings.SECURITY_CLIENT_CERT_FORMAT = fmt
    assert_ok(get(cert_server, http_headers(pki.valid, fmt)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_refuses_unknown_ca(cert_server, cert_client, pki, settings, fmt):
    settings.SECURITY_CLIENT_CERT_FORMAT = fmt
    assert_refused(get(cert_server, http_headers(pki.unknown_leaf, fmt)), "cert-untrusted")


def test_header_in_another_format_than_configured_is_not_read(
    cert_server, cert_client, pki, settings
):
    settings.SECURITY_CLIENT_CERT_FORMAT = "envoy"
    assert_refused(get(cert_server, http_headers(pki.valid, "nginx")), "cert-missing")


def envoy_header(*elements):
    return {"X-Forwarded-Client-Cert": ",".join(elements)}


def test_envoy_multi_hop_uses_the_element_our_proxy_added(cert_server, cert_client, pki, settings):
    settings.SECURITY_CLIENT_CERT_FORMAT = "envoy"
    outer = encode_cert_header(pki.unknown_leaf, "envoy")
    ours = encode_cert_header(pki.valid, "envoy", [pki.a.intermediate])
    assert_ok(get(cert_server, envoy_header(outer, ours)))
    # A client-supplied element first does not matter; one after ours would be the last hop's.
    assert_refused(get(cert_server, envoy_header(ours, outer)), "cert-untrusted")


# --- Missing, malformed, or failed at the proxy -------------------------------------------------


def test_no_certificate(cert_server, cert_client):
    response = get(cert_server)
    assert_refused(response, "cert-missing")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_proxy_says_none(cert_server, cert_client, pki):
    assert_refused(get(cert_server, http_headers(None)), "cert-missing")


def test_proxy_says_failed(cert_server, cert_client, pki):
    headers = http_headers(pki.valid, verify="FAILED:certificate has expired")
    assert_refused(get(cert_server, headers), "cert-untrusted")


def test_proxy_says_success_without_certificate(cert_server, cert_client):
    headers = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-Cert": ""}
    assert_refused(get(cert_server, headers), "cert-header-malformed")


@pytest.mark.parametrize("value", ["not a certificate", "-----BEGIN%20CERTIFICATE-----%0AAAAA"])
def test_malformed_header(cert_server, cert_client, value):
    headers = {"X-SSL-Client-Cert": value, "X-SSL-Client-Verify": "SUCCESS"}
    assert_refused(get(cert_server, headers), "cert-header-malformed")


def test_unknown_format_setting_fails_closed(cert_server, cert_client, pki, settings):
    settings.SECURITY_CLIENT_CERT_FORMAT = "haproxy"
    assert_refused(get(cert_server, http_headers(pki.valid)), "cert-header-malformed")


# --- Certificates that must not verify ----------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "code"),
    [
        ("unknown_leaf", "cert-untrusted"),
        ("expired", "cert-expired"),
        ("not_yet_valid", "cert-not-yet-valid"),
        ("wrong_eku", "cert-wrong-usage"),
        ("server", "cert-wrong-usage"),
        ("revoked", "cert-revoked"),
    ],
)
def test_certificate_refused(cert_server, cert_client, pki, leaf, code):
    issued = getattr(pki, leaf)
    # Registered, so nothing but the certificate itself can be the reason.
    CertificateIdentity.objects.create(
        client=cert_client, kind="fingerprint", value=issued.fingerprint
    )
    response = get(cert_server, http_headers(issued, chain=[pki.a.intermediate]))
    assert_refused(response, code)
    assert response.headers["X-Test-Fingerprint"] == issued.fingerprint


def test_intermediate_revoked_by_root(cert_server, cert_client, pki, trust_community):
    from .pki import make_crl

    crl = make_crl(pki.a.root, (pki.a.intermediate.cert.serial_number,))
    store_crl(trust_community.anchors.get(kind="root"), crl)
    assert_refused(get(cert_server, http_headers(pki.valid)), "cert-revoked")


def test_stale_crl_fails_closed(cert_server, cert_client, pki, trust_community):
    store_crl(trust_community.anchors.get(kind="intermediate"), pki.a.stale_intermediate_crl)
    assert_refused(get(cert_server, http_headers(pki.valid)), "crl-unavailable")


def test_missing_root_crl_fails_closed(cert_server, cert_client, trust_community, pki):
    RevocationList.objects.filter(issuer__kind="root").delete()
    assert_refused(get(cert_server, http_headers(pki.valid)), "crl-unavailable")


def test_tampered_stored_crl_is_not_used(cert_server, cert_client, pki, trust_community):
    # Written straight into the database, bypassing refreshcrls' checks.
    store_crl(trust_community.anchors.get(kind="intermediate"), pki.a.forged_intermediate_crl)
    assert_refused(get(cert_server, http_headers(pki.valid)), "crl-unavailable")


# --- Which client --------------------------------------------------------------------------------


def test_unknown_client(cert_server, trust_community, pki):
    assert_refused(get(cert_server, http_headers(pki.valid)), "client-unknown")


def test_suspended_client(cert_server, trust_community, pki):
    register_client("Client A", trust_community, status=ApiClient.SUSPENDED, dns=CLIENT_A_DNS)
    assert_refused(get(cert_server, http_headers(pki.valid)), "client-suspended")


@pytest.mark.parametrize("kind", ["dns", "subject", "fingerprint"])
def test_identity_kinds(cert_server, trust_community, pki, kind):
    value = {"dns": "CLIENT-A.Example.ORG", "subject": pki.valid.subject}.get(
        kind, pki.valid.fingerprint
    )
    register_client("Client A", trust_community, **{kind: value})
    assert_ok(get(cert_server, http_headers(pki.valid)))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("dns", "*.example.org"),
        ("dns", "example.org"),
        ("dns", "client-a.example.org.evil"),
        ("subject", "CN=Client A"),
        ("fingerprint", "00" * 32),
    ],
)
def test_near_miss_identities_do_not_match(cert_server, trust_community, pki, kind, value):
    register_client("Client A", trust_community, **{kind: value})
    assert_refused(get(cert_server, http_headers(pki.valid)), "client-unknown")


def test_certificate_claimed_by_two_clients_is_refused(cert_server, trust_community, pki):
    register_client("Client A", trust_community, dns=CLIENT_A_DNS)
    register_client("Client A2", trust_community, fingerprint=pki.valid.fingerprint)
    assert_refused(get(cert_server, http_headers(pki.valid)), "client-unknown")


# --- Two communities ----------------------------------------------------------------------------


def test_two_communities_each_trusted(cert_server, cert_client, cert_client_b, pki):
    assert_ok(get(cert_server, http_headers(pki.valid)))
    assert_ok(get(cert_server, http_headers(pki.valid_b)), "Client B", "community-b")


def test_community_b_cert_not_accepted_for_a_client_bound_to_a(
    cert_server, trust_community, trust_community_b, pki
):
    register_client("Client A", trust_community, dns=CLIENT_B_DNS)
    assert_refused(get(cert_server, http_headers(pki.valid_b)), "client-unknown")


def test_client_without_community_accepts_any_trusted_community(
    cert_server, trust_community, trust_community_b, pki
):
    register_client("Roaming", None, dns=CLIENT_B_DNS)
    assert_ok(get(cert_server, http_headers(pki.valid_b)), "Roaming", "community-b")


def test_community_b_not_registered(cert_server, cert_client, pki):
    register_client("Client B", None, dns=CLIENT_B_DNS)
    assert_refused(get(cert_server, http_headers(pki.valid_b)), "cert-untrusted")


def test_inactive_community_is_not_trusted(cert_server, cert_client, trust_community, pki):
    TrustCommunity.objects.filter(pk=trust_community.pk).update(active=False)
    assert_refused(get(cert_server, http_headers(pki.valid)), "cert-untrusted")


# --- Cache --------------------------------------------------------------------------------------


def test_trust_changes_take_effect_after_cache_period(
    cert_server, cert_client, trust_community, pki, settings
):
    settings.SECURITY_CACHE_SECONDS = 1
    assert_ok(get(cert_server, http_headers(pki.valid)))
    TrustCommunity.objects.filter(pk=trust_community.pk).update(active=False)
    assert_ok(get(cert_server, http_headers(pki.valid)))  # still the cached trust store
    time.sleep(1.1)
    assert_refused(get(cert_server, http_headers(pki.valid)), "cert-untrusted")


def test_cache_seconds_zero_reads_every_time(
    cert_server, cert_client, pki, trust_community, settings
):
    settings.SECURITY_CACHE_SECONDS = 0
    assert_ok(get(cert_server, http_headers(pki.valid)))
    store_crl(trust_community.anchors.get(kind="intermediate"), pki.a.stale_intermediate_crl)
    assert_refused(get(cert_server, http_headers(pki.valid)), "crl-unavailable")


# --- Development mode ---------------------------------------------------------------------------


@pytest.fixture
def dev(settings):
    settings.ENVIRONMENT = "dev"
    settings.SECURITY_REQUIRE_CLIENT_CERT = False


def test_dev_allows_missing_certificate(cert_server, dev, cert_client):
    response = get(cert_server)
    assert response.status_code == 200
    assert response.headers["X-Test-Outcome"] == "ok"
    assert response.headers["X-Test-Client"] == ""  # left to the API-key check


def test_dev_still_verifies_a_presented_certificate(cert_server, dev, cert_client, pki):
    assert_refused(get(cert_server, http_headers(pki.expired)), "cert-expired")
    assert_ok(get(cert_server, http_headers(pki.valid)))
