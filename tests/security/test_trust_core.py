"""The trust core (security/trust/): one fingerprint in agreeing forms, an issued-by check that a
forged intermediate cannot pass, and the one CRL writer (checks, ordering, locking)."""

import base64
import threading
from datetime import timedelta
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from security import clients, truststore
from security.anchors import AnchorError, register_anchor
from security.middleware.client_certificate import identify_client
from security.models import CertificateIdentity, RevocationList, TrustAnchor
from security.refusal import Refusal
from security.trust import certificates, chains, crls
from security.verification import verify

from .conftest import LIVE_DB
from .pki import CLIENT_A_DNS, DAY, NOW, make_crl, make_intermediate, make_leaf, make_root
from .trust import register_client, register_community

# ---------------------------------------------------------------------------- fingerprints


def test_every_form_of_the_fingerprint_names_the_same_digest(pki):
    cert = pki.valid.cert
    digest = cert.fingerprint(hashes.SHA256())
    canonical = certificates.fingerprint(cert)
    assert canonical == digest.hex() and canonical == canonical.lower() and len(canonical) == 64
    display = certificates.display_fingerprint(canonical)
    assert display == ":".join(f"{b:02X}" for b in digest)
    assert certificates.canonical_fingerprint(display) == canonical
    assert certificates.canonical_fingerprint(canonical.upper().replace("", " ")) == canonical
    padded = certificates.x5t_s256(cert) + "="
    assert base64.urlsafe_b64decode(padded) == digest


def test_every_way_a_certificate_arrives_reads_to_the_same_fingerprint(pki):
    issued = pki.valid
    expected = issued.fingerprint
    forms = [
        issued.pem,
        issued.pem.encode(),
        issued.der,
        base64.b64encode(issued.der).decode(),
    ]
    assert {certificates.fingerprint(certificates.load_certificate(f)) for f in forms} == {expected}
    assert {certificates.parse_certificate(f).fingerprint for f in forms} == {expected}
    escaped = certificates.load_escaped_pem(quote(issued.pem + pki.a.intermediate.pem))
    assert [certificates.fingerprint(c) for c in escaped] == [
        expected,
        pki.a.intermediate.fingerprint,
    ]
    b64 = base64.b64encode(issued.der).decode()
    assert certificates.fingerprint(certificates.load_base64_der(b64)) == expected


@pytest.mark.parametrize("text", ["", "ab" * 31, "zz" * 32, "ab" * 33])
def test_a_typed_fingerprint_that_is_not_sha256_is_refused(text):
    with pytest.raises(ValueError):
        certificates.canonical_fingerprint(text)


@pytest.mark.parametrize("data", ["", "not a certificate", b"\x30\x03\x02\x01\x01"])
def test_unreadable_certificates_raise_certificate_error(data):
    with pytest.raises(certificates.CertificateError):
        certificates.load_certificate(data)


def test_a_non_ascii_header_is_not_read_around():
    with pytest.raises(certificates.CertificateError):
        certificates.load_pem_certificates("é-----BEGIN CERTIFICATE-----")


def test_a_pin_typed_in_display_form_and_one_stored_before_both_identify(trust_community, pki):
    """A fingerprint identity pasted as the admin shows it (colons, upper case) is stored in the
    canonical form, and a row stored as plain hex before the trust core keeps identifying."""
    typed = register_client("Typed pin", trust_community)
    clients.add_identity(
        typed, "fingerprint", value=pki.valid.fingerprint.upper(), actor="test"
    )  # upper case, no colons
    stored = CertificateIdentity.objects.get(client=typed)
    assert stored.value == pki.valid.fingerprint
    assert identify_client(verify(pki.valid.cert, [], NOW)) == typed

    stored.delete()
    display = certificates.display_fingerprint(pki.valid.fingerprint)
    clients.add_identity(typed, "fingerprint", value=display, actor="test")
    assert CertificateIdentity.objects.get(client=typed).value == pki.valid.fingerprint

    CertificateIdentity.objects.filter(client=typed).delete()
    legacy = register_client("Legacy pin", trust_community, fingerprint=pki.valid.fingerprint)
    assert identify_client(verify(pki.valid.cert, [], NOW)) == legacy


# ---------------------------------------------------------------------------- issued-by


@pytest.fixture(scope="module")
def forged(pki):
    """An intermediate named exactly as community A's, claiming A's root as issuer, but made
    with a root key of an attacker's; and a client certificate it signed."""
    fake_root = make_root("Community A Root CA")
    intermediate = make_intermediate(fake_root, "Community A Issuing CA")
    assert intermediate.cert.subject == pki.a.intermediate.cert.subject
    assert intermediate.cert.issuer == pki.a.root.cert.subject
    leaf = make_leaf(intermediate, "Forged client", (CLIENT_A_DNS,))
    return intermediate, leaf


def test_issued_by_needs_the_signature_not_only_the_name(pki, forged):
    intermediate, leaf = forged
    assert chains.issued_by(pki.valid.cert, pki.a.intermediate.cert)
    assert not chains.issued_by(intermediate.cert, pki.a.root.cert), "right name, wrong key"
    assert not chains.issued_by(leaf.cert, pki.a.intermediate.cert), "right name, wrong key"
    assert chains.issued_by(leaf.cert, intermediate.cert)
    assert not chains.issued_by(pki.valid.cert, pki.b.intermediate.cert), "another name"


def test_a_forged_intermediate_reaches_no_root(pki, forged):
    intermediate, leaf = forged
    roots = [pki.a.root.cert]
    assert chains.reaches_root(pki.valid.cert, roots, [pki.a.intermediate.cert])
    assert not chains.reaches_root(leaf.cert, roots, [intermediate.cert, pki.a.intermediate.cert])
    with pytest.raises(chains.ChainError):
        chains.verified_client_path(leaf.cert, roots, [intermediate.cert], NOW)


def test_a_client_behind_a_forged_intermediate_is_refused(trust_community, pki, forged):
    intermediate, leaf = forged
    with pytest.raises(Refusal) as refused:
        verify(leaf.cert, [intermediate.cert], NOW)
    assert refused.value.reason.code == "cert-untrusted"


def test_a_forged_intermediate_is_not_registered_as_an_anchor(trust_community, forged):
    intermediate, _ = forged
    with pytest.raises(AnchorError, match="does not chain"):
        register_anchor(
            intermediate.cert, trust_community.slug, TrustAnchor.INTERMEDIATE, actor="tests"
        )


def test_the_library_path_goes_leaf_to_root_and_checks_dates(pki):
    roots, pool = [pki.a.root.cert], [pki.a.intermediate.cert]
    path = chains.verified_client_path(pki.valid.cert, roots, pool, NOW)
    assert path == [pki.valid.cert, pki.a.intermediate.cert, pki.a.root.cert]
    assert chains.within_dates(path, NOW)
    assert chains.date_problem(pki.expired.cert, NOW) == "expired"
    assert chains.date_problem(pki.not_yet_valid.cert, NOW) == "not-yet-valid"
    with pytest.raises(chains.ChainError):
        chains.verified_client_path(pki.expired.cert, roots, pool, NOW)


def test_client_usage_and_ca_checks(pki):
    assert chains.is_client_certificate(pki.valid.cert)
    assert not chains.is_client_certificate(pki.wrong_eku.cert)
    assert chains.ca_problem(pki.a.intermediate.cert) is None
    assert "basicConstraints CA is false" in chains.ca_problem(pki.valid.cert)


# ---------------------------------------------------------------------------- CRL storage


def anchor_of(community, kind):
    return community.anchors.get(kind=kind)


@pytest.fixture
def bare_community(db, pki):
    """Community A's anchors without any CRL stored."""
    return register_community(pki.a, crls=False)


def test_a_checked_crl_is_stored_and_the_trust_store_sees_it(bare_community, pki):
    intermediate = anchor_of(bare_community, "intermediate")
    truststore.current()  # a snapshot from before, which storing must replace
    row = crls.store_crl(intermediate, pki.a.intermediate_crl)
    assert row.next_update == pki.a.intermediate_crl.next_update_utc
    assert bytes(row.crl_der) == pki.a.intermediate_crl.public_bytes(Encoding.DER), "stored as DER"
    (trust,) = truststore.current().communities
    assert trust.anchor_for(pki.a.intermediate.cert).revocation.is_current(timezone.now())
    assert trust.anchor_for(pki.a.root.cert).revocation.crl is None


@pytest.mark.parametrize(
    ("crl_of", "reason"),
    [
        (lambda pki: pki.a.forged_intermediate_crl, "signature does not verify"),
        (lambda pki: pki.b.intermediate_crl, "issuer does not match"),
        (lambda pki: pki.a.stale_intermediate_crl, "past its nextUpdate"),
    ],
    ids=["wrongly-signed", "other-issuer", "expired"],
)
def test_a_crl_that_does_not_check_out_is_refused(bare_community, pki, crl_of, reason):
    intermediate = anchor_of(bare_community, "intermediate")
    with pytest.raises(crls.CrlError, match=reason):
        crls.store_crl(intermediate, crl_of(pki))
    assert not RevocationList.objects.filter(issuer=intermediate).exists()


def test_an_older_crl_never_replaces_a_newer_one(bare_community, pki):
    intermediate = anchor_of(bare_community, "intermediate")
    newer = make_crl(pki.a.intermediate, this_update=NOW - timedelta(hours=1))
    older = make_crl(pki.a.intermediate, this_update=NOW - 3 * DAY)
    crls.store_crl(intermediate, newer)
    with pytest.raises(crls.CrlError, match="older"):
        crls.store_crl(intermediate, older)
    stored = RevocationList.objects.get(issuer=intermediate)
    assert stored.this_update == newer.last_update_utc


def test_a_stored_crl_that_no_longer_checks_out_is_not_loaded(bare_community, pki):
    root = anchor_of(bare_community, "root")
    der = pki.a.forged_intermediate_crl.public_bytes(Encoding.DER)
    row = RevocationList.objects.create(issuer=root, crl_der=der, next_update=NOW + DAY)
    assert crls.load_crl(row, pki.a.root.cert) is None
    assert crls.load_crl(None, pki.a.root.cert) is None


def test_the_anchor_row_is_locked_while_a_crl_is_compared_and_written(bare_community, pki):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: it serialises every write to the database")
    intermediate = anchor_of(bare_community, "intermediate")
    with CaptureQueriesContext(connection) as queries:
        crls.store_crl(intermediate, pki.a.intermediate_crl)
    statements = [q["sql"] for q in queries.captured_queries]
    lock = next(i for i, sql in enumerate(statements) if "FOR UPDATE" in sql)
    assert '"security_trustanchor"' in statements[lock]
    write = next(i for i, sql in enumerate(statements) if "security_revocationlist" in sql)
    assert lock < write, "locked before the stored CRL is read"


@LIVE_DB
def test_two_writers_at_once_leave_one_row_with_the_newest_crl(pki):
    """Each writer commits in its own connection; whichever order the lock gives them, the
    newer CRL is what remains, in a single row."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (SQLite serialises whole-database writes)")
    community = register_community(pki.a, crls=False)
    intermediate = anchor_of(community, "intermediate")
    crl_list = [
        make_crl(pki.a.intermediate, this_update=NOW - timedelta(minutes=m)) for m in (50, 10)
    ]
    for attempt in range(5):
        RevocationList.objects.filter(issuer=intermediate).delete()
        outcomes = _store_concurrently(intermediate, crl_list if attempt % 2 else crl_list[::-1])
        assert outcomes.count("stored") >= 1, outcomes
        rows = RevocationList.objects.filter(issuer=intermediate)
        assert rows.count() == 1
        assert rows.get().this_update == crl_list[1].last_update_utc


def _store_concurrently(anchor, crl_list) -> list[str]:
    start = threading.Barrier(len(crl_list))
    outcomes: list[str] = []

    def store(crl):
        try:
            start.wait()
            crls.store_crl(anchor, crl, timezone.now())
            outcomes.append("stored")
        except crls.CrlError as error:
            outcomes.append(str(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=store, args=(crl,)) for crl in crl_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_every_crl_writer_goes_through_the_one_function():
    """No other module writes RevocationList rows (the PKI commands, refreshcrls and the tests'
    helpers aside, which go through it or build fixtures)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    writers = [
        path.relative_to(root).as_posix()
        for package in ("security", "directory", "fhirapi")
        for path in (root / package).rglob("*.py")
        if "RevocationList.objects.update_or_create" in path.read_text()
        or "RevocationList.objects.create" in path.read_text()
    ]
    assert writers == ["security/trust/crls.py"]


def test_x509_is_parsed_only_in_the_trust_core():
    """Certificates and CRLs are read by security/trust only: one parser, one fingerprint."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    needles = ("load_pem_x509", "load_der_x509", ".fingerprint(hashes", "verify_directly_issued")
    readers = sorted(
        path.relative_to(root).as_posix()
        for package in ("security", "directory", "fhirapi")
        for path in (root / package).rglob("*.py")
        if any(needle in path.read_text() for needle in needles)
    )
    assert readers == [
        "security/trust/certificates.py",
        "security/trust/chains.py",
        "security/trust/crls.py",
    ]
