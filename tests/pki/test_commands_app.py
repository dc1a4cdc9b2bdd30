"""The toolkit's PKI as the server sees it: registered anchors and clients, certificates accepted
by the app's own verifier and certificate check, and refused once revoked and the CRL is loaded."""

import datetime as dt

import pytest
from cryptography import x509
from django.core.management import CommandError
from django.test import Client

from pki import revocation
from security.models import ApiClient, CertificateIdentity, KeyEvent, RevocationList, TrustAnchor
from security.refusal import Refusal
from security.trust.certificates import fingerprint
from security.verification import verify
from tests.security.conftest import secured_middleware
from tests.security.pki import cert_headers
from tests.security.trust import store_crl

from .test_commands import DIRECT, FQDN, load, revoke_intermediate, run


@pytest.fixture
def community(db, tmp_path):
    """Riverbend's root and intermediate, registered as trust anchors with their first CRLs."""
    run(
        "pki_init_community",
        "--dir",
        str(tmp_path / "ca"),
        "--community",
        "riverbend",
        "--name",
        "Riverbend",
        "--intermediate",
        "--register",
    )
    return tmp_path / "ca"


@pytest.fixture
def http(settings):
    """A Django test client behind the proxy and certificate checks, as nginx would front it."""
    settings.ENVIRONMENT = "test"
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    settings.SECURITY_CLIENT_CERT_FORMAT = "nginx"
    settings.SECURITY_TRUSTED_PROXIES = ["127.0.0.1/32"]
    settings.MIDDLEWARE = secured_middleware()
    return Client()


def issue_registered_client(ca, out, *identity):
    run(
        "pki_issue_client",
        "--ca",
        str(ca / "intermediate"),
        "--out",
        str(out),
        *identity,
        "--register-client",
        "Riverbend HIE",
        "--scopes",
        "system/*.read",
    )
    name = identity[1]
    return load(out / f"{name}.pem")


def metadata(http, cert, intermediate):
    return http.get("/fhir/metadata", **cert_headers(cert, chain=[intermediate]))


def test_register_creates_anchors_with_crl_sources_and_fresh_crls(community):
    root, intermediate = (TrustAnchor.objects.get(kind=k) for k in ("root", "intermediate"))
    assert root.community.slug == "riverbend" and root.community.name == "Riverbend"
    assert root.fingerprint_sha256 == fingerprint(load(community / "root/ca.pem"))
    assert root.crl_source == str((community / "root/crl.der").resolve())
    assert intermediate.crl_source == str((community / "intermediate/crl.der").resolve())
    assert RevocationList.objects.filter(last_error="", crl_der__isnull=False).count() == 2
    run("refreshcrls")  # the sources are readable and current: exit 0


def test_register_with_crl_url_uses_it_as_source(db, tmp_path):
    run(
        "pki_init_community",
        "--dir",
        str(tmp_path / "ca"),
        "--community",
        "r",
        "--name",
        "R",
        "--crl-url",
        "https://pki.example.org/crl",
        "--register",
    )
    assert TrustAnchor.objects.get().crl_source == "https://pki.example.org/crl/r-root.crl"
    assert RevocationList.objects.get().crl_der  # stored now; refreshcrls fetches later ones


def test_organization_client_accepted_by_the_app(community, tmp_path, http):
    cert = issue_registered_client(
        community, tmp_path / "out", "--fqdn", FQDN, "--organization", "Riverbend HIE"
    )
    client = ApiClient.objects.get(name="Riverbend HIE")
    assert client.community.slug == "riverbend"
    assert client.allowed_scopes == "system/*.read"
    assert [(i.kind, i.value) for i in client.identities.all()] == [("dns", FQDN)]
    intermediate = load(community / "intermediate/ca.pem")
    verified = verify(cert, [intermediate], dt.datetime.now(dt.UTC))
    assert [c.subject for c in verified.chain][-1] == load(community / "root/ca.pem").subject
    response = metadata(http, cert, intermediate)
    assert response.status_code == 200, response.content
    assert response["X-Test-Outcome"] == "ok"
    assert response["X-Test-Client"] == "Riverbend HIE"
    assert response["X-Test-Community"] == "riverbend"


def test_direct_address_client_accepted_by_fingerprint(community, tmp_path, http):
    cert = issue_registered_client(community, tmp_path / "out", "--direct-address", DIRECT)
    identity = CertificateIdentity.objects.get()
    assert (identity.kind, identity.value) == ("fingerprint", fingerprint(cert))
    response = metadata(http, cert, load(community / "intermediate/ca.pem"))
    assert response.status_code == 200, response.content
    assert response["X-Test-Client"] == "Riverbend HIE"


def test_reissue_updates_the_client(community, tmp_path):
    issue_registered_client(community, tmp_path / "one", "--fqdn", FQDN, "--organization", "R")
    run(
        "pki_issue_client",
        "--ca",
        str(community / "intermediate"),
        "--out",
        str(tmp_path / "two"),
        "--fqdn",
        FQDN,
        "--organization",
        "R",
        "--register-client",
        "Riverbend HIE",
        "--scopes",
        "system/*.read system/*.write",
    )
    client = ApiClient.objects.get()
    assert client.allowed_scopes == "system/*.read system/*.write"
    assert client.identities.count() == 1  # the same FQDN still recognises the new certificate
    actions = list(KeyEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == [
        "anchor-added",
        "anchor-added",
        "client-created",
        "identity-added",
        "client-scopes-changed",
    ]


def test_register_client_needs_a_registered_ca(db, tmp_path):
    run("pki_init_community", "--dir", str(tmp_path / "ca"), "--community", "r", "--name", "R")
    with pytest.raises(CommandError, match="register the CA first"):
        run(
            "pki_issue_client",
            "--ca",
            str(tmp_path / "ca/root"),
            "--out",
            str(tmp_path / "o"),
            "--fqdn",
            FQDN,
            "--organization",
            "R",
            "--register-client",
            "X",
        )
    assert not ApiClient.objects.exists()


def test_revoked_and_published_is_refused_at_once_here(community, tmp_path, http):
    cert = issue_registered_client(
        community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R"
    )
    intermediate = load(community / "intermediate/ca.pem")
    assert metadata(http, cert, intermediate).status_code == 200
    run(
        "pki_revoke",
        "--ca",
        str(community / "intermediate"),
        "--serial",
        f"{cert.serial_number:x}",
        "--reason",
        "keyCompromise",
    )
    assert metadata(http, cert, intermediate).status_code == 200  # not published yet
    output = run("pki_publish_crl", "--ca", str(community / "intermediate"))
    assert "stored for trust anchor" in output
    response = metadata(http, cert, intermediate)
    assert response.status_code == 403
    assert response["X-Test-Outcome"] == "cert-revoked"


def test_other_servers_refuse_after_refreshcrls(community, tmp_path, http):
    # Another server holding only the first CRL learns of the revocation through refreshcrls,
    # whose crl_source is the file pki_publish_crl writes.
    cert = issue_registered_client(
        community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R"
    )
    ca = community / "intermediate"
    first_crl = x509.load_der_x509_crl((ca / "crl.der").read_bytes())
    run("pki_revoke", "--ca", str(ca), "--cert", str(tmp_path / "out" / f"{FQDN}.pem"))
    run("pki_publish_crl", "--ca", str(ca))
    anchor = TrustAnchor.objects.get(kind="intermediate")
    RevocationList.objects.filter(issuer=anchor).delete()
    store_crl(anchor, first_crl)
    intermediate = load(ca / "ca.pem")
    assert metadata(http, cert, intermediate).status_code == 200
    run("refreshcrls")
    response = metadata(http, cert, intermediate)
    assert response["X-Test-Outcome"] == "cert-revoked"
    with pytest.raises(Refusal) as refused:
        verify(cert, [intermediate], dt.datetime.now(dt.UTC))
    assert refused.value.reason.code == "cert-revoked"


def test_revoked_intermediate_refuses_its_clients(community, tmp_path, http):
    cert = issue_registered_client(
        community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R"
    )
    revoke_intermediate(community)
    response = metadata(http, cert, load(community / "intermediate/ca.pem"))
    assert response["X-Test-Outcome"] == "cert-revoked"


def test_publish_never_stores_an_older_crl(community, monkeypatch):
    # A CA host with a clock gone back must not un-revoke anything on the server.
    ca = community / "intermediate"
    stored = bytes(RevocationList.objects.get(issuer__kind="intermediate").crl_der)
    an_hour_ago = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    monkeypatch.setattr(revocation, "_now", lambda: an_hour_ago)
    with pytest.raises(CommandError, match="already holds a newer one"):
        run("pki_publish_crl", "--ca", str(ca))
    assert bytes(RevocationList.objects.get(issuer__kind="intermediate").crl_der) == stored
