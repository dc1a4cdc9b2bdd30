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


def _community_form(name, slug, active):
    form = {"name": name, "slug": slug, "description": "", "anchors-TOTAL_FORMS": "0"}
    form.update({"anchors-INITIAL_FORMS": "0", "anchors-MAX_NUM_FORMS": "1000"})
    return {**form, "active": "on"} if active else form


def test_a_community_saved_in_the_admin_is_audited_and_distrusted_at_once(
    superuser_client, pki, settings, django_capture_on_commit_callbacks
):
    from security import truststore
    from security.anchors import register_anchor

    settings.SECURITY_CACHE_SECONDS = 3600  # only the save itself may drop the snapshot
    added = superuser_client.post(
        "/admin/security/trustcommunity/add/", _community_form("Harbor", "harbor", True)
    )
    assert added.status_code == 302
    community = TrustCommunity.objects.get(slug="harbor")
    register_anchor(pki.a.root.cert, "harbor", actor="tests")
    truststore.invalidate()
    assert [t.community.slug for t in truststore.current().communities] == ["harbor"]

    with django_capture_on_commit_callbacks(execute=True):
        changed = superuser_client.post(
            f"/admin/security/trustcommunity/{community.pk}/change/",
            _community_form("Harbor", "harbor", False),
        )
    assert changed.status_code == 302
    assert truststore.current().communities == ()
    events = KeyEvent.objects.filter(action__startswith="community-").order_by("id")
    assert [(e.actor, e.action, e.detail) for e in events] == [
        ("root-admin", "community-added", "harbor (Harbor); active True"),
        ("root-admin", "community-changed", "harbor: active True -> False"),
    ]
