"""refreshcrls and addtrustanchor: CRLs fetched from files and loopback HTTP, checked, stored."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.core.management import CommandError, call_command

from security.crl import stale_anchors
from security.models import RevocationList, TrustAnchor, TrustCommunity

from .conftest import LIVE_DB
from .pki import (
    DAY,
    NOW,
    crl_der,
    crl_pem,
    http_headers,
    make_crl,
    make_intermediate,
    make_root,
)
from .trust import register_community, store_crl


def anchor(community, kind):
    return TrustAnchor.objects.get(community=community, kind=kind)


def write(tmp_path, name, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def point_at_files(tmp_path, community, root_crl, intermediate_crl):
    """Give both anchors of `community` a file CRL source: root as PEM, intermediate as DER."""
    TrustAnchor.objects.filter(pk=anchor(community, "root").pk).update(
        crl_source=write(tmp_path, "root.crl.pem", crl_pem(root_crl))
    )
    TrustAnchor.objects.filter(pk=anchor(community, "intermediate").pk).update(
        crl_source="file://" + write(tmp_path, "issuing.crl", crl_der(intermediate_crl))
    )


@pytest.fixture
def stale_community(db, pki):
    """Community A whose issuing CA's stored CRL is past nextUpdate."""
    community = register_community(pki.a)
    store_crl(anchor(community, "intermediate"), pki.a.stale_intermediate_crl)
    return community


# --- refreshcrls --------------------------------------------------------------------------------


def test_refresh_from_files_stores_fresh_crls(stale_community, pki, tmp_path):
    newer = make_crl(pki.a.intermediate, (pki.revoked.cert.serial_number,), this_update=NOW)
    point_at_files(tmp_path, stale_community, pki.a.root_crl, newer)
    assert len(stale_anchors()) == 1
    call_command("refreshcrls")
    stored = RevocationList.objects.get(issuer=anchor(stale_community, "intermediate"))
    assert bytes(stored.crl_der) == crl_der(newer)
    assert stored.next_update == newer.next_update_utc
    assert stored.last_error == ""
    assert stale_anchors() == []


def test_refresh_failure_exits_non_zero_and_keeps_the_old_crl(stale_community, pki, tmp_path):
    point_at_files(tmp_path, stale_community, pki.a.root_crl, pki.a.forged_intermediate_crl)
    with pytest.raises(CommandError, match="community-a"):
        call_command("refreshcrls")
    stored = RevocationList.objects.get(issuer=anchor(stale_community, "intermediate"))
    assert "signature" in stored.last_error
    assert stored.last_attempt_at is not None
    assert bytes(stored.crl_der) == crl_der(pki.a.stale_intermediate_crl)


def test_crl_of_another_issuer_is_refused(stale_community, pki, tmp_path):
    point_at_files(tmp_path, stale_community, pki.a.root_crl, pki.b.intermediate_crl)
    with pytest.raises(CommandError):
        call_command("refreshcrls")
    stored = RevocationList.objects.get(issuer=anchor(stale_community, "intermediate"))
    assert "issuer" in stored.last_error


def test_older_crl_than_stored_is_refused(trust_community, pki, tmp_path):
    # The stored one is fresh; a replayed older one must not replace it (it could un-revoke).
    point_at_files(tmp_path, trust_community, pki.a.root_crl, pki.a.stale_intermediate_crl)
    call_command("refreshcrls")  # fresh CRLs remain: exit 0
    stored = RevocationList.objects.get(issuer=anchor(trust_community, "intermediate"))
    assert "older" in stored.last_error
    assert bytes(stored.crl_der) == crl_der(pki.a.intermediate_crl)


@pytest.mark.parametrize("content", [b"", b"garbage", b"-----BEGIN X509 CRL-----\nAAAA\n"])
def test_unreadable_crl(stale_community, pki, tmp_path, content):
    point_at_files(tmp_path, stale_community, pki.a.root_crl, pki.a.root_crl)
    TrustAnchor.objects.filter(pk=anchor(stale_community, "intermediate").pk).update(
        crl_source=write(tmp_path, "bad.crl", content)
    )
    with pytest.raises(CommandError):
        call_command("refreshcrls")
    assert RevocationList.objects.get(issuer__kind="intermediate").last_error


@pytest.mark.parametrize("source", ["/nonexistent/x.crl", "ftp://example.org/x.crl"])
def test_bad_sources(stale_community, pki, tmp_path, source):
    point_at_files(tmp_path, stale_community, pki.a.root_crl, pki.a.root_crl)
    TrustAnchor.objects.filter(kind="intermediate").update(crl_source=source)
    with pytest.raises(CommandError):
        call_command("refreshcrls")


def test_no_source_leaves_community_stale(db, pki):
    register_community(pki.a, crls=False)
    with pytest.raises(CommandError, match="community-a"):
        call_command("refreshcrls")
    assert RevocationList.objects.filter(last_error__contains="no CRL source").count() == 2


class _Serve(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def crl_http():
    """A tiny HTTP server on 127.0.0.1; set `files` (path -> bytes) on the returned handler."""
    handler = type("Serve", (_Serve,), {"files": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_refresh_over_http(stale_community, pki, crl_http):
    handler, base = crl_http
    handler.files = {
        "/root.crl": crl_der(pki.a.root_crl),
        "/issuing.crl": crl_pem(pki.a.intermediate_crl),
    }
    TrustAnchor.objects.filter(kind="root").update(crl_source=base + "/root.crl")
    TrustAnchor.objects.filter(kind="intermediate").update(crl_source=base + "/issuing.crl")
    call_command("refreshcrls")
    assert stale_anchors() == []


def test_http_404_is_an_error(stale_community, pki, crl_http):
    _, base = crl_http
    TrustAnchor.objects.filter(kind="intermediate").update(crl_source=base + "/missing.crl")
    with pytest.raises(CommandError):
        call_command("refreshcrls")
    assert "cannot fetch" in RevocationList.objects.get(issuer__kind="intermediate").last_error


def test_blank_source_uses_distribution_point_published_by_the_ca(db, crl_http, tmp_path):
    # The root's CRL location is in the certificates the root signs: here, the intermediate's.
    handler, base = crl_http
    root = make_root("CDP Root")
    intermediate = make_intermediate(root, "CDP Issuing", crl_url=base + "/cdp-root.crl")
    handler.files = {"/cdp-root.crl": crl_der(make_crl(root))}
    call_command(
        "addtrustanchor", community="cdp", certificate=write(tmp_path, "r.pem", root.pem.encode())
    )
    call_command(
        "addtrustanchor",
        community="cdp",
        kind="intermediate",
        certificate=write(tmp_path, "i.pem", intermediate.pem.encode()),
    )
    with pytest.raises(CommandError):  # the intermediate has no source: still stale
        call_command("refreshcrls")
    root_row = TrustAnchor.objects.get(kind="root")
    assert root_row.crl.last_error == ""
    assert root_row.crl.next_update is not None


def test_community_option(stale_community, trust_community_b, pki, tmp_path):
    point_at_files(tmp_path, stale_community, pki.a.root_crl, pki.a.intermediate_crl)
    call_command("refreshcrls", community="community-b")  # B is fresh; A untouched
    assert len(stale_anchors()) == 1
    with pytest.raises(CommandError):
        call_command("refreshcrls", community="nope")


@LIVE_DB
def test_stale_crl_refused_until_refreshcrls(cert_server, cert_client, pki, tmp_path):
    community = TrustCommunity.objects.get(slug="community-a")
    store_crl(anchor(community, "intermediate"), pki.a.stale_intermediate_crl)
    url = cert_server + "/fhir/metadata"
    refused = requests.get(url, headers=http_headers(pki.valid), timeout=10)
    assert refused.status_code == 503
    assert refused.headers["X-Test-Outcome"] == "crl-unavailable"
    assert refused.json()["issue"][0]["code"] == "transient"
    assert "stale" not in refused.text and "CRL" not in refused.text  # no internals
    point_at_files(tmp_path, community, pki.a.root_crl, pki.a.intermediate_crl)
    call_command("refreshcrls")
    accepted = requests.get(url, headers=http_headers(pki.valid), timeout=10)
    assert accepted.status_code == 200
    assert accepted.headers["X-Test-Client"] == "Client A"
    revoked = requests.get(url, headers=http_headers(pki.revoked), timeout=10)
    assert revoked.headers["X-Test-Outcome"] == "cert-revoked"


@LIVE_DB
def test_forged_crl_rejected_by_refreshcrls_keeps_refusing(cert_server, cert_client, pki, tmp_path):
    community = TrustCommunity.objects.get(slug="community-a")
    store_crl(anchor(community, "intermediate"), pki.a.stale_intermediate_crl)
    point_at_files(tmp_path, community, pki.a.root_crl, pki.a.forged_intermediate_crl)
    with pytest.raises(CommandError):
        call_command("refreshcrls")
    response = requests.get(
        cert_server + "/fhir/metadata", headers=http_headers(pki.valid), timeout=10
    )
    assert response.headers["X-Test-Outcome"] == "crl-unavailable"


# --- addtrustanchor -----------------------------------------------------------------------------


@pytest.fixture
def pem_files(pki, tmp_path):
    def pem_file(issued, name=None):
        return write(tmp_path, name or f"{issued.fingerprint[:8]}.pem", issued.pem.encode())

    return pem_file


def test_add_root_and_intermediate(db, pki, pem_files):
    call_command(
        "addtrustanchor", community="a", name="Community A", certificate=pem_files(pki.a.root)
    )
    call_command(
        "addtrustanchor",
        community="a",
        kind="intermediate",
        certificate=pem_files(pki.a.intermediate),
        crl="https://crl.example.org/a.crl",
    )
    community = TrustCommunity.objects.get(slug="a")
    assert community.name == "Community A"
    intermediate = anchor(community, "intermediate")
    assert intermediate.subject == pki.a.intermediate.subject
    assert intermediate.fingerprint_sha256 == pki.a.intermediate.fingerprint
    assert intermediate.not_after == pki.a.intermediate.cert.not_valid_after_utc
    assert intermediate.crl_source == "https://crl.example.org/a.crl"


def test_rerun_updates_crl_source(db, pki, pem_files):
    call_command("addtrustanchor", community="a", certificate=pem_files(pki.a.root))
    call_command("addtrustanchor", community="a", certificate=pem_files(pki.a.root), crl="/x.crl")
    assert TrustAnchor.objects.get().crl_source == "/x.crl"


@pytest.mark.parametrize(
    ("setup", "kind", "cert", "message"),
    [
        ([], "root", "valid", "not a CA"),
        ([], "intermediate", "intermediate", "no root"),
        (["root"], "intermediate", "b_intermediate", "does not chain"),
        ([], "root", "intermediate", "self-signed"),
    ],
)
def test_refused_anchors(db, pki, pem_files, setup, kind, cert, message):
    certs = {
        "root": pki.a.root,
        "intermediate": pki.a.intermediate,
        "b_intermediate": pki.b.intermediate,
        "valid": pki.valid,
    }
    for name in setup:
        call_command("addtrustanchor", community="a", certificate=pem_files(certs[name]))
    with pytest.raises(CommandError, match=message):
        call_command("addtrustanchor", community="a", kind=kind, certificate=pem_files(certs[cert]))


def test_same_certificate_in_another_community_refused(db, pki, pem_files):
    call_command("addtrustanchor", community="a", certificate=pem_files(pki.a.root))
    with pytest.raises(CommandError, match="already registered"):
        call_command("addtrustanchor", community="b", certificate=pem_files(pki.a.root))


def test_unreadable_certificate_file(db, tmp_path):
    with pytest.raises(CommandError):
        call_command("addtrustanchor", community="a", certificate=write(tmp_path, "x.pem", b"nope"))
    with pytest.raises(CommandError):
        call_command("addtrustanchor", community="a", certificate=str(tmp_path / "missing.pem"))


def test_expired_crl_next_update_marks_stale(trust_community, pki):
    store_crl(
        anchor(trust_community, "root"),
        make_crl(pki.a.root, this_update=NOW - 9 * DAY, next_update=NOW - DAY),
    )
    assert [a.kind for a in stale_anchors()] == ["root"]
