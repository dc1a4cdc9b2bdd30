"""Admin pages for trust anchors and audit records."""

import pytest
from django.contrib.auth import get_user_model

from security.models import KeyEvent, RequestAudit, TrustAnchor, TrustCommunity

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser("root-admin", "r@example.org", "x" * 16)
    client.force_login(user)
    return client


def _add_anchor(client, community, kind, pem):
    return client.post(
        "/admin/security/trustanchor/add/",
        {"community": community.pk, "kind": kind, "certificate_pem": pem, "crl_source": ""},
    )


def test_administrator_adds_a_root_anchor_parsed_from_its_certificate(superuser_client, pki):
    community = TrustCommunity.objects.create(name="Admin community", slug="admin-community")
    response = _add_anchor(superuser_client, community, TrustAnchor.ROOT, pki.a.root.pem)
    assert response.status_code == 302
    anchor = TrustAnchor.objects.get(community=community)
    assert anchor.fingerprint_sha256 == pki.a.root.fingerprint
    assert anchor.subject == pki.a.root.subject


def test_a_leaf_or_an_unchained_intermediate_is_refused_on_the_form(superuser_client, pki):
    community = TrustCommunity.objects.create(name="Admin community", slug="admin-community")
    leaf = _add_anchor(superuser_client, community, TrustAnchor.ROOT, pki.valid.pem)
    assert leaf.status_code == 200 and b"errornote" in leaf.content
    stray = _add_anchor(
        superuser_client, community, TrustAnchor.INTERMEDIATE, pki.b.intermediate.pem
    )
    assert stray.status_code == 200
    garbage = _add_anchor(superuser_client, community, TrustAnchor.ROOT, "not a certificate")
    assert b"not a PEM X.509 certificate" in garbage.content
    assert not TrustAnchor.objects.exists()


def test_audit_records_can_be_read_but_never_changed(superuser_client):
    row = RequestAudit.objects.create(
        time="2026-01-01T00:00:00Z",
        method="GET",
        path="/fhir/Organization",
        status=200,
        outcome="ok",
        duration_ms=3,
    )
    event = KeyEvent.objects.create(actor="tests", action="issue", key_prefix="abc")
    assert superuser_client.get("/admin/security/requestaudit/").status_code == 200
    for url in (
        f"/admin/security/requestaudit/{row.pk}/change/",
        f"/admin/security/keyevent/{event.pk}/change/",
    ):
        page = superuser_client.get(url)
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert superuser_client.post(url, {}).status_code == 403
    assert superuser_client.get("/admin/security/requestaudit/add/").status_code == 403
    assert (
        superuser_client.post(
            f"/admin/security/requestaudit/{row.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
