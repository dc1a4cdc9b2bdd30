"""The trust and expiry dashboard: who may see it, and that it lists every kind of item."""

import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from directory import storage
from directory.admin_certificates import DIGITAL_CERTIFICATE_URL
from directory.models import Resource
from directory.reindex import reindex_rows
from security.models import (
    ApiKey,
    CertificateIdentity,
    RevocationList,
    TrustAnchor,
    TrustCommunity,
)

from .factories import ApiClientFactory, ApiKeyFactory
from .pki import make_leaf, make_root
from .staff import fast_passwords, make_staff  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

URL = "/admin/trust-dashboard/"
DAY = timedelta(days=1)


def make_anchor(community, subject, not_before, not_after, kind=TrustAnchor.ROOT):
    return TrustAnchor.objects.create(
        community=community,
        kind=kind,
        certificate_pem="-",
        subject=subject,
        fingerprint_sha256=f"{abs(hash(subject)):064x}"[:64],
        not_before=not_before,
        not_after=not_after,
    )


def make_endpoint(logical_id, expiration_date, deleted=False):
    """An Endpoint row indexed as a write indexes it (the certificate index is what the dashboard
    reads), then deleted through storage when asked, which drops its index rows."""
    extension = {
        "url": DIGITAL_CERTIFICATE_URL,
        "extension": [{"url": "expirationDate", "valueDate": expiration_date}],
    }
    content = {"resourceType": "Endpoint", "id": logical_id, "extension": [extension]}
    row = Resource.objects.create(
        resource_type="Endpoint",
        logical_id=logical_id,
        version_id=1,
        last_updated=timezone.now(),
        deleted=False,
        content=json.dumps(content),
    )
    reindex_rows([row])
    if deleted:
        storage.delete("Endpoint", logical_id)
    return row


def pem_issued(not_before):
    leaf = make_leaf(make_root("Dashboard Root"), "client", not_before=not_before)
    return leaf.cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def estate():
    """One of each thing the dashboard reports, plus near misses it must leave out."""
    now = timezone.now()
    community = TrustCommunity.objects.create(name="Community A", slug="a")
    fresh = make_anchor(community, "CN=Fresh Root", now - 800 * DAY, now + 3000 * DAY)
    stale = make_anchor(
        community, "CN=Stale CA", now - 100 * DAY, now + 40 * DAY, TrustAnchor.INTERMEDIATE
    )
    make_anchor(community, "CN=Unfetched CA", now - 10 * DAY, now + 900 * DAY)
    RevocationList.objects.create(
        issuer=fresh, crl_der=b"crl", next_update=now + DAY, fetched_at=now - timedelta(hours=1)
    )
    RevocationList.objects.create(
        issuer=stale,
        crl_der=b"crl",
        next_update=now - DAY,
        fetched_at=now - 9 * DAY,
        last_error="connection refused",
    )

    client = ApiClientFactory(name="Harbor Clinic")
    CertificateIdentity.objects.create(
        client=client, kind="dns", value="soon.example.org", not_after=now + 30 * DAY
    )
    CertificateIdentity.objects.create(
        client=client, kind="dns", value="later.example.org", not_after=now + 300 * DAY
    )
    CertificateIdentity.objects.create(
        client=client,
        kind="fingerprint",
        value="ab" * 32,
        certificate_pem=pem_issued(now - 400 * DAY),
        not_after=now + 400 * DAY,
    )

    make_endpoint("ep-soon", (now + 45 * DAY).date().isoformat())
    make_endpoint("ep-later", (now + 200 * DAY).date().isoformat())
    make_endpoint("ep-deleted", (now + 5 * DAY).date().isoformat(), deleted=True)

    ApiKeyFactory(client=client, prefix="fdk_expiring", expires_at=now + 10 * DAY, last_used_at=now)
    ApiKeyFactory(
        client=client,
        prefix="fdk_retired",
        state=ApiKey.RETIRED,
        expires_at=now + 10 * DAY,
        last_used_at=now - 200 * DAY,
    )
    ApiKeyFactory(client=client, prefix="fdk_idle", last_used_at=now - 100 * DAY)
    never = ApiKeyFactory(client=client, prefix="fdk_never")
    ApiKey.objects.filter(pk=never.pk).update(created=now - 120 * DAY)
    ApiKeyFactory(client=client, prefix="fdk_new")
    return community


@pytest.fixture
def admin_client_(client):
    client.force_login(make_staff("ann", "admin"))
    return client


def labels_by_kind(response) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for item in response.context["expiring"]:
        found.setdefault(item.kind, set()).add(item.label)
    return found


def test_each_kind_of_expiring_item_is_listed(admin_client_, estate):
    response = admin_client_.get(URL)
    assert response.status_code == 200
    found = labels_by_kind(response)

    assert found["Client certificate"] == {"Harbor Clinic: SAN DNS name: soon.example.org"}
    assert found["Endpoint certificate"] == {"Endpoint/ep-soon"}
    assert found["Trust anchor"] == {"Community A: CN=Stale CA"}
    assert found["API key"] == {"Harbor Clinic: fdk_expiring…"}
    days = [item.days_left for item in response.context["expiring"]]
    assert days == sorted(days), "soonest first"


def test_unused_keys_are_listed(admin_client_, estate):
    response = admin_client_.get(URL)
    prefixes = {key.prefix for key in response.context["unused_keys"]}
    assert prefixes == {"fdk_idle", "fdk_never"}


def test_certificates_past_twelve_months_are_flagged(admin_client_, estate):
    response = admin_client_.get(URL)
    due = {(item.kind, item.label, item.estimated) for item in response.context["renewal_due"]}
    assert ("Trust anchor", "Community A: CN=Fresh Root", False) in due
    assert ("Client certificate", "Harbor Clinic: SHA-256 fingerprint: " + "ab" * 32, False) in due
    # 18-month lifetime with 30 days left: estimated to be well past 12 months.
    assert ("Client certificate", "Harbor Clinic: SAN DNS name: soon.example.org", True) in due
    labels = {label for _, label, _ in due}
    assert "Community A: CN=Unfetched CA" not in labels
    assert "Harbor Clinic: SAN DNS name: later.example.org" not in labels


def test_crl_status_of_each_anchor(admin_client_, estate):
    response = admin_client_.get(URL)
    states = {row["anchor"].subject: row["crl_state"] for row in response.context["anchors"]}
    assert states == {
        "CN=Fresh Root": "fresh",
        "CN=Stale CA": "stale",
        "CN=Unfetched CA": "never fetched",
    }
    html = response.content.decode()
    assert 'class="crl-stale"' in html and 'class="crl-fresh"' in html
    assert "connection refused" in html


def test_support_staff_see_the_dashboard_and_its_link(client, estate):
    client.force_login(make_staff("sam", "support"))
    assert client.get(URL).status_code == 200
    assert URL in client.get("/admin/").content.decode()


def test_auditors_neither_see_the_dashboard_nor_its_link(client, estate):
    client.force_login(make_staff("ada", "auditor"))
    assert client.get(URL).status_code == 403
    assert URL not in client.get("/admin/").content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_dashboard_is_never_cached(admin_client_):
    assert admin_client_.get(URL)["Cache-Control"] == "no-store"
