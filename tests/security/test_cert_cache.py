"""The certificate check's memo (verified chains per trust snapshot, the client of a
certificate for SECURITY_CACHE_SECONDS) never outlives a change beyond its bound.

In the process that makes a change: refused on the very next request. In other processes (two
gunicorn workers here): refused once SECURITY_CACHE_SECONDS has passed, never later. Dates and
revocation against the current snapshot are checked on every request.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests

from security import truststore, verification
from security.clients import suspend_client
from security.models import CertificateIdentity, TrustAnchor
from security.refusal import REASONS, Refusal
from tests.servers import gunicorn, process_env, wait_until_serving

from .conftest import LIVE_DB
from .pki import CLIENT_A_DNS, http_headers, make_crl
from .trust import register_client, store_crl

pytestmark = LIVE_DB
METADATA = "/fhir/metadata"
ACTOR = "test:alice"
BOUND = 2  # SECURITY_CACHE_SECONDS of the gunicorn under test


def get(url, pki, leaf=None):
    headers = http_headers(leaf or pki.valid, chain=[pki.a.intermediate])
    return requests.get(url + METADATA, headers=headers, timeout=10)


def outcome(response) -> str:
    return response.headers.get("X-Test-Outcome", "")


# --- In this process: the very next request ----------------------------------------------------


def test_suspended_client_refused_on_the_next_request(cert_server, cert_client, pki, settings):
    settings.SECURITY_CACHE_SECONDS = 3600  # the memo would answer all day if not forgotten
    assert outcome(get(cert_server, pki)) == "ok"
    assert outcome(get(cert_server, pki)) == "ok"
    suspend_client(cert_client, ACTOR)
    assert outcome(get(cert_server, pki)) == "client-suspended"


def test_second_client_claiming_the_certificate_refused_on_the_next_request(
    cert_server, cert_client, trust_community, pki, settings
):
    settings.SECURITY_CACHE_SECONDS = 3600
    assert outcome(get(cert_server, pki)) == "ok"
    register_client("Client Z", trust_community, dns=CLIENT_A_DNS.upper())
    assert outcome(get(cert_server, pki)) == "client-unknown"


def test_removed_identity_refused_on_the_next_request(cert_server, cert_client, pki, settings):
    settings.SECURITY_CACHE_SECONDS = 3600
    assert outcome(get(cert_server, pki)) == "ok"
    CertificateIdentity.objects.filter(client=cert_client).delete()
    assert outcome(get(cert_server, pki)) == "client-unknown"


def test_memo_is_used_and_dates_still_checked_per_request(cert_client, pki, settings, monkeypatch):
    settings.SECURITY_CACHE_SECONDS = 3600
    calls = []
    full = verification._verify_chain
    monkeypatch.setattr(verification, "_verify_chain", lambda *a: calls.append(1) or full(*a))
    now = dt.datetime.now(dt.UTC)
    leaf = pki.valid.cert
    for _ in range(3):
        verification.verify(leaf, [pki.a.intermediate.cert], now)
    assert len(calls) == 1, "signatures are checked once per snapshot"
    with pytest.raises(Refusal) as refused:
        verification.verify(
            leaf, [pki.a.intermediate.cert], leaf.not_valid_after_utc + dt.timedelta(seconds=1)
        )
    assert refused.value.reason.code == "cert-expired"


def test_revocation_checked_per_request_against_the_snapshot(cert_client, pki, settings):
    settings.SECURITY_CACHE_SECONDS = 3600
    now = dt.datetime.now(dt.UTC)
    chain = [pki.a.intermediate.cert]
    verification.verify(pki.valid.cert, chain, now)
    _revoke_valid_leaf(pki)
    truststore.invalidate()  # what storing a CRL through the app does in its process
    with pytest.raises(Refusal) as refused:
        verification.verify(pki.valid.cert, chain, now)
    assert refused.value.reason.code == "cert-revoked"


def _revoke_valid_leaf(pki):
    serials = (pki.a.leaves["revoked"].cert.serial_number, pki.valid.cert.serial_number)
    anchor = TrustAnchor.objects.get(kind=TrustAnchor.INTERMEDIATE, community__slug="community-a")
    store_crl(anchor, make_crl(pki.a.intermediate, serials))


# --- In other processes: within SECURITY_CACHE_SECONDS -----------------------------------------


@pytest.fixture
def workers(tmp_path, cert_client):
    """Two gunicorn workers with a short cache bound, both having answered the certificate."""
    env = process_env(
        ENVIRONMENT="test",
        SECURITY_TRUSTED_PROXIES="127.0.0.1/32",
        SECURITY_CACHE_SECONDS=str(BOUND),
    )
    with gunicorn(env, tmp_path, workers=2) as (url, process):
        wait_until_serving(url, process)
        yield url


def last_allowed_after(url, pki, code: str) -> float:
    """Seconds after the change at which a worker last allowed the certificate (0 if none did);
    every refusal in the meantime is `code`, and past the bound every request is refused."""
    changed = time.monotonic()
    last_allowed = changed
    while time.monotonic() - changed < BOUND + 1:
        response = get(url, pki)
        if response.status_code == 200:  # a worker that has not yet re-read the database
            last_allowed = time.monotonic()
        else:
            assert response.status_code == REASONS[code].status, response.text
            assert response.json()["issue"][0]["diagnostics"] == REASONS[code].message
        time.sleep(0.05)
    for _ in range(10):
        assert get(url, pki).status_code == REASONS[code].status
    return last_allowed - changed


def warm(url, pki):
    for _ in range(20):  # fresh connections: both workers answer and remember
        assert get(url, pki).status_code == 200


def test_suspension_reaches_every_worker_within_the_bound(workers, cert_client, pki):
    warm(workers, pki)
    suspend_client(cert_client, ACTOR)  # in this process: the workers only see the database
    assert last_allowed_after(workers, pki, "client-suspended") <= BOUND + 0.5


def test_revocation_reaches_every_worker_within_the_bound(workers, cert_client, pki):
    warm(workers, pki)
    _revoke_valid_leaf(pki)
    assert last_allowed_after(workers, pki, "cert-revoked") <= BOUND + 0.5
