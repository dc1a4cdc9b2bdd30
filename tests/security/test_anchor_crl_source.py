"""A trust anchor's CRL source is changed only through security.anchors.set_crl_source: the admin
page, the community page's inline and addtrustanchor leave the same row and the same KeyEvent."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from security import crl
from security.anchors import AnchorError, register_anchor, set_crl_source
from security.models import KeyEvent, TrustAnchor

from .pki import make_intermediate, make_root

ROOT_CRL = "http://127.0.0.1:9/root.crl"
NEW_SOURCE = "https://pki.riverbend.example.org/root.crl"


@pytest.fixture
def anchors(db):
    """A root and an intermediate whose certificate names the root's CRL distribution point."""
    root = make_root("Riverbend Root")
    intermediate = make_intermediate(root, "Riverbend Issuing", crl_url=ROOT_CRL)
    stored_root = register_anchor(root.cert, "riverbend", actor="tests").anchor
    register_anchor(intermediate.cert, "riverbend", TrustAnchor.INTERMEDIATE, actor="tests")
    return stored_root


@pytest.fixture
def admin_page(db):
    admin = User.objects.create_superuser("ada.admin", password="correct horse battery staple")
    signed_in = Client()
    signed_in.force_login(admin)
    return signed_in


def change_url(anchor):
    return reverse("admin:security_trustanchor_change", args=[anchor.pk])


def crl_events():
    return list(
        KeyEvent.objects.filter(action="anchor-crl-source-changed")
        .order_by("id")
        .values_list("actor", "detail")
    )


def outcome(anchor):
    """What a change left: the stored source and the events it recorded; then forget both, so
    the other path can be tried from the same start."""
    anchor.refresh_from_db()
    left = (anchor.crl_source, crl_events())
    KeyEvent.objects.filter(action="anchor-crl-source-changed").delete()
    TrustAnchor.objects.filter(pk=anchor.pk).update(crl_source="")
    return left


def test_registering_records_who_added_each_anchor(anchors):
    added = KeyEvent.objects.filter(action="anchor-added").order_by("id")
    assert [e.actor for e in added] == ["tests", "tests"]
    assert added[0].detail.startswith(f"root {anchors.fingerprint_sha256[:16]} in riverbend")


def test_admin_and_service_leave_the_same_source_and_event(anchors, admin_page):
    response = admin_page.post(change_url(anchors), {"crl_source": f"  {NEW_SOURCE} "})
    assert response.status_code == 302
    by_admin = outcome(anchors)
    assert set_crl_source(anchors, NEW_SOURCE, "ada.admin") is True
    assert outcome(anchors) == by_admin
    assert by_admin[0] == NEW_SOURCE
    (actor, detail), *_ = by_admin[1]
    assert actor == "ada.admin"
    assert detail.endswith(f"CRL source (distribution points) -> {NEW_SOURCE}")


def test_clearing_means_the_published_distribution_point(anchors, admin_page):
    set_crl_source(anchors, NEW_SOURCE, "tests")
    assert crl.crl_sources(anchors) == [NEW_SOURCE]
    assert admin_page.post(change_url(anchors), {"crl_source": ""}).status_code == 302
    anchors.refresh_from_db()
    assert anchors.crl_source == ""
    assert crl.crl_sources(anchors) == [ROOT_CRL]
    assert crl_events()[-1] == (
        "ada.admin",
        f"root {anchors.fingerprint_sha256[:16]} in riverbend; "
        f"CRL source {NEW_SOURCE} -> (distribution points)",
    )


def test_saving_unchanged_records_nothing(anchors, admin_page):
    set_crl_source(anchors, NEW_SOURCE, "tests")
    assert set_crl_source(anchors, f" {NEW_SOURCE}", "tests") is False
    assert admin_page.post(change_url(anchors), {"crl_source": NEW_SOURCE}).status_code == 302
    assert len(crl_events()) == 1


@pytest.mark.parametrize(
    "source",
    [
        "ftp://pki.example.org/root.crl",
        "ldap://pki.example.org/cn=root",
        "relative/root.crl",
        "https:///root.crl",
        "https://crl:s3cret@pki.example.org/root.crl",
        "https://pki.example.org/" + "x" * 500,
    ],
)
def test_an_unusable_source_is_refused_by_both(anchors, admin_page, source):
    with pytest.raises(AnchorError):
        set_crl_source(anchors, source, "tests")
    response = admin_page.post(change_url(anchors), {"crl_source": source})
    assert response.status_code == 200  # the form again, with the reason
    assert response.context["adminform"].form.errors["crl_source"]
    anchors.refresh_from_db()
    assert (anchors.crl_source, crl_events()) == ("", [])


def test_the_community_pages_inline_goes_through_the_service(anchors, admin_page):
    community = anchors.community
    rows = list(community.anchors.order_by("id"))
    data = {
        "name": community.name,
        "slug": community.slug,
        "active": "on",
        "anchors-TOTAL_FORMS": "2",
        "anchors-INITIAL_FORMS": "2",
        "anchors-MIN_NUM_FORMS": "0",
        "anchors-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data |= {
            f"anchors-{i}-id": str(row.pk),
            f"anchors-{i}-community": str(community.pk),
            f"anchors-{i}-crl_source": NEW_SOURCE if row.pk == anchors.pk else "",
        }
    url = reverse("admin:security_trustcommunity_change", args=[community.pk])
    assert admin_page.post(url, data).status_code == 302
    by_inline = outcome(anchors)
    set_crl_source(anchors, NEW_SOURCE, "ada.admin")
    assert outcome(anchors) == by_inline
    assert by_inline[0] == NEW_SOURCE
    # A refused source on the inline is a form error, not a 500 and not a write.
    data[f"anchors-{rows.index(anchors)}-crl_source"] = "ftp://pki.example.org/root.crl"
    assert admin_page.post(url, data).status_code == 200
    assert crl_events() == []


def test_addtrustanchor_changes_the_source_through_the_service(anchors, tmp_path):
    path = tmp_path / "root.pem"
    path.write_text(anchors.certificate_pem)
    out = StringIO()
    call_command(
        "addtrustanchor", community="riverbend", certificate=str(path), crl=NEW_SOURCE, stdout=out
    )
    assert "updated CRL source" in out.getvalue()
    anchors.refresh_from_db()
    assert anchors.crl_source == NEW_SOURCE
    ((actor, detail),) = crl_events()
    assert actor.startswith("command:")
    assert detail.endswith(f"(distribution points) -> {NEW_SOURCE}")
