"""The community PKI toolkit's commands: files, modes, lifetimes, revocation state and status."""

import datetime as dt
import json
import os
import stat
from io import StringIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store
from django.core.management import CommandError, call_command

from pki import issue
from pki.keys import generate_key
from pki.policy import certificate_warnings

# pki_publish_crl looks for a matching trust anchor, so commands may touch the database.
pytestmark = pytest.mark.django_db

DIRECT = "dr.smith@direct.example.org"
FQDN = "hie.riverbend.example.org"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def community(tmp_path):
    """A root and intermediate under tmp_path/ca, not registered in the database."""
    run(
        "pki_init_community",
        "--dir",
        str(tmp_path / "ca"),
        "--community",
        "riverbend",
        "--name",
        "Riverbend",
        "--intermediate",
    )
    return tmp_path / "ca"


def issue_client(ca, out, *args) -> x509.Certificate:
    run("pki_issue_client", "--ca", str(ca / "intermediate"), "--out", str(out), *args)
    name = (
        args[args.index("--fqdn") + 1]
        if "--fqdn" in args
        else args[args.index("--direct-address") + 1]
    )
    return load(out / f"{name}.pem")


# --- pki_init_community -------------------------------------------------------------------------


def test_init_writes_the_layout_with_owner_only_keys(tmp_path):
    old_umask = os.umask(0)  # even a permissive umask must not widen a key file
    try:
        run(
            "pki_init_community",
            "--dir",
            str(tmp_path / "ca"),
            "--community",
            "riverbend",
            "--name",
            "Riverbend",
            "--intermediate",
        )
    finally:
        os.umask(old_umask)
    for which in ("root", "intermediate"):
        ca = tmp_path / "ca" / which
        names = {p.name for p in ca.iterdir()}
        assert {
            "ca.json",
            "ca.pem",
            "ca.key.pem",
            "serial",
            "crl.der",
            "crl.pem",
            "issued",
        } <= names
        assert mode(ca / "ca.key.pem") == 0o600
        assert mode(ca / "ca.pem") == 0o644
    root, intermediate = (
        load(tmp_path / "ca/root/ca.pem"),
        load(tmp_path / "ca/intermediate/ca.pem"),
    )
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert (root.not_valid_after_utc - root.not_valid_before_utc).days == 3652
    assert (intermediate.not_valid_after_utc - intermediate.not_valid_before_utc).days == 1826
    constraints = intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    intermediate.verify_directly_issued_by(root)
    # The root keeps the intermediate it signed, so it can revoke it.
    assert [p.stem for p in (tmp_path / "ca/root/issued").iterdir()] == [
        f"{intermediate.serial_number:x}"
    ]


def test_init_refuses_to_overwrite_a_ca(community):
    key_before = (community / "root/ca.key.pem").read_bytes()
    with pytest.raises(CommandError, match="refusing to overwrite"):
        run(
            "pki_init_community",
            "--dir",
            str(community),
            "--community",
            "riverbend",
            "--name",
            "Riverbend",
        )
    assert (community / "root/ca.key.pem").read_bytes() == key_before


def test_private_keys_are_never_printed(tmp_path):
    output = run(
        "pki_init_community",
        "--dir",
        str(tmp_path / "ca"),
        "--community",
        "x",
        "--name",
        "X",
        "--intermediate",
    )
    output += run(
        "pki_issue_client",
        "--ca",
        str(tmp_path / "ca/intermediate"),
        "--out",
        str(tmp_path / "out"),
        "--fqdn",
        FQDN,
        "--organization",
        "R",
    )
    assert "PRIVATE KEY" not in output


def test_crl_url_is_embedded_in_what_each_ca_issues(tmp_path):
    run(
        "pki_init_community",
        "--dir",
        str(tmp_path / "ca"),
        "--community",
        "riverbend",
        "--name",
        "Riverbend",
        "--intermediate",
        "--crl-url",
        "http://pki.example.org/crl/",
    )
    leaf = issue_client(tmp_path / "ca", tmp_path / "out", "--fqdn", FQDN, "--organization", "R")
    intermediate = load(tmp_path / "ca/intermediate/ca.pem")
    assert distribution_point(intermediate) == "http://pki.example.org/crl/riverbend-root.crl"
    assert distribution_point(leaf) == "http://pki.example.org/crl/riverbend-issuing.crl"


def distribution_point(cert) -> str:
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return points[0].full_name[0].value


def test_rsa_key_type(tmp_path):
    run(
        "pki_init_community",
        "--dir",
        str(tmp_path / "ca"),
        "--community",
        "r",
        "--name",
        "R",
        "--key-type",
        "rsa",
    )
    root = load(tmp_path / "ca/root/ca.pem")
    assert isinstance(root.public_key(), rsa.RSAPublicKey)
    assert root.public_key().key_size == 3072


# --- issuing ------------------------------------------------------------------------------------


def test_organization_client_certificate(community, tmp_path):
    cert = issue_client(
        community, tmp_path / "out", "--fqdn", FQDN, "--organization", "Riverbend HIE"
    )
    assert cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    ).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [FQDN]
    assert (
        cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value
        == "Riverbend HIE"
    )
    assert mode(tmp_path / "out" / f"{FQDN}.key.pem") == 0o600
    intermediate = load(community / "intermediate/ca.pem")
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    # The chain file carries the intermediate a TLS client must send.
    assert x509.load_pem_x509_certificates(
        (tmp_path / "out" / f"{FQDN}.chain.pem").read_bytes()
    ) == [
        cert,
        intermediate,
    ]


def test_default_lifetime_is_18_months(community, tmp_path):
    cert = issue_client(community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R")
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=547) < lifetime <= dt.timedelta(days=548)


def test_direct_address_certificate(community, tmp_path):
    cert = issue_client(community, tmp_path / "out", "--direct-address", DIRECT)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [DIRECT]
    usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION}
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and key_usage.key_agreement  # EC: encryption by agreement
    assert mode(tmp_path / "out" / f"{DIRECT}.key.pem") == 0o600


@pytest.mark.parametrize("address", ["not-an-address", "a@b", "dr smith@direct.example.org"])
def test_bad_direct_address_refused(community, tmp_path, address):
    with pytest.raises(CommandError, match="Direct address"):
        issue_client(community, tmp_path / "out", "--direct-address", address)
    assert not (tmp_path / "out").exists()


def test_client_certificate_names_its_software_for_udap(community, tmp_path):
    uri = "https://apps.riverbend.example.org/sync"
    cert = issue_client(
        community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R", "--software-uri", uri
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]
    assert san.get_values_for_type(x509.DNSName) == [FQDN]


@pytest.mark.parametrize("uri", ["http://apps.example.org/sync", "https:///nohost", "urn:x:y"])
def test_software_uri_must_be_https_with_a_host(community, tmp_path, uri):
    with pytest.raises(CommandError, match="not an https URI"):
        issue_client(
            community,
            tmp_path / "out",
            "--fqdn",
            FQDN,
            "--organization",
            "R",
            "--software-uri",
            uri,
        )
    assert not (tmp_path / "out" / f"{FQDN}.key.pem").exists()


def test_client_key_never_overwritten(community, tmp_path):
    issue_client(community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R")
    key_before = (tmp_path / "out" / f"{FQDN}.key.pem").read_bytes()
    with pytest.raises(CommandError, match="refusing to overwrite"):
        issue_client(community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R")
    assert (tmp_path / "out" / f"{FQDN}.key.pem").read_bytes() == key_before
    assert len(list((community / "intermediate/issued").iterdir())) == 1  # nothing signed


def test_leaf_may_not_outlive_its_ca(community, tmp_path):
    with pytest.raises(CommandError, match="outlive the CA"):
        issue_client(
            community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R", "--days", "2000"
        )
    assert not (tmp_path / "out" / f"{FQDN}.key.pem").exists()


def test_server_certificate_verifies_as_a_server(community, tmp_path):
    run(
        "pki_issue_server",
        "--ca",
        str(community / "intermediate"),
        "--out",
        str(tmp_path / "srv"),
        "--dns",
        "directory.example.org",
        "--dns",
        "fhir.example.org",
        "--ip",
        "192.0.2.10",
    )
    cert = load(tmp_path / "srv/directory.example.org.pem")
    assert mode(tmp_path / "srv/directory.example.org.key.pem") == 0o600
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["directory.example.org", "fhir.example.org"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]
    verifier = (
        PolicyBuilder()
        .store(Store([load(community / "root/ca.pem")]))
        .build_server_verifier(x509.DNSName("fhir.example.org"))
    )
    chain = verifier.verify(cert, [load(community / "intermediate/ca.pem")])
    assert len(chain) == 3


def test_issue_needs_a_ca_directory(tmp_path):
    with pytest.raises(CommandError, match="not a CA directory"):
        run(
            "pki_issue_server",
            "--ca",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--dns",
            "a.example",
        )


# --- revocation and CRLs ------------------------------------------------------------------------


def published_crl(ca) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl((ca / "crl.der").read_bytes())


def test_revoke_and_publish(community, tmp_path):
    cert = issue_client(community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R")
    ca = community / "intermediate"
    first = published_crl(ca)
    assert len(first) == 0
    run(
        "pki_revoke",
        "--ca",
        str(ca),
        "--serial",
        f"{cert.serial_number:X}",
        "--reason",
        "keyCompromise",
    )
    state = json.loads((ca / "revoked.json").read_text())
    assert state["revoked"][0]["serial"] == f"{cert.serial_number:x}"
    assert state["revoked"][0]["reason"] == "keyCompromise"
    assert published_crl(ca) == first  # revoking alone publishes nothing
    output = run("pki_publish_crl", "--ca", str(ca), "--days", "3")
    crl = published_crl(ca)
    assert "published CRL 2" in output
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert crl.is_signature_valid(load(ca / "ca.pem").public_key())
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=3)
    assert x509.load_pem_x509_crl((ca / "crl.pem").read_bytes()) == crl


def test_crl_number_increases(community):
    ca = community / "intermediate"
    numbers = []
    for _ in range(3):
        run("pki_publish_crl", "--ca", str(ca))
        numbers.append(
            published_crl(ca).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        )
    assert numbers == [2, 3, 4]  # 1 was published by pki_init_community
    crl = published_crl(ca)
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)


def test_revoke_by_certificate_file(community, tmp_path):
    cert = issue_client(community, tmp_path / "out", "--direct-address", DIRECT)
    ca = str(community / "intermediate")
    assert "revoked" in run(
        "pki_revoke", "--ca", ca, "--cert", str(tmp_path / "out" / f"{DIRECT}.pem")
    )
    assert "already revoked" in run("pki_revoke", "--ca", ca, "--serial", f"{cert.serial_number:x}")
    # Unspecified is expressed by leaving the reason code out (RFC 5280).
    run("pki_publish_crl", "--ca", ca)
    entry = published_crl(community / "intermediate").get_revoked_certificate_by_serial_number(
        cert.serial_number
    )
    assert len(entry.extensions) == 0


def test_revoke_refuses_what_the_ca_did_not_issue(community, tmp_path):
    ca = str(community / "intermediate")
    with pytest.raises(CommandError, match="issued no certificate"):
        run("pki_revoke", "--ca", ca, "--serial", "abc123")
    with pytest.raises(CommandError, match="not issued by this CA"):
        run("pki_revoke", "--ca", ca, "--cert", str(community / "root/ca.pem"))
    with pytest.raises(CommandError, match="hexadecimal"):
        run("pki_revoke", "--ca", ca, "--serial", "xyz")


def revoke_intermediate(community) -> None:
    """The community root revokes its issuing CA and publishes the CRL that says so."""
    run(
        "pki_revoke",
        "--ca",
        str(community / "root"),
        "--cert",
        str(community / "intermediate/ca.pem"),
        "--reason",
        "cACompromise",
    )
    run("pki_publish_crl", "--ca", str(community / "root"))


def test_root_revokes_the_intermediate(community):
    intermediate = load(community / "intermediate/ca.pem")
    revoke_intermediate(community)
    assert published_crl(community / "root").get_revoked_certificate_by_serial_number(
        intermediate.serial_number
    )


# --- pki_status and the lifetime policy ---------------------------------------------------------


def test_status_lists_certificates_and_warnings(community, tmp_path, monkeypatch):
    ca = community / "intermediate"
    fresh = issue_client(community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R")
    short = issue_client(
        community,
        tmp_path / "out",
        "--fqdn",
        "short.example.org",
        "--organization",
        "R",
        "--days",
        "30",
    )
    thirteen_months_ago = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=400)
    monkeypatch.setattr(issue, "_now", lambda: thirteen_months_ago)
    old = issue_client(
        community, tmp_path / "out", "--fqdn", "old.example.org", "--organization", "R"
    )
    monkeypatch.undo()
    run("pki_revoke", "--ca", str(ca), "--serial", f"{short.serial_number:x}")
    output = run("pki_status", "--ca", str(ca))
    lines = {line.split()[0]: line for line in output.splitlines() if not line.startswith(" ")}
    assert lines[f"{fresh.serial_number:x}"].endswith("valid")
    assert "age 400d" in lines[f"{old.serial_number:x}"]
    assert lines[f"{short.serial_number:x}"].endswith("REVOKED")
    assert "older than 12 months (400 days)" in output
    assert "expires in" not in output  # the short-lived one is revoked: nothing to renew
    assert "3 issued, 1 revoked, 1 need attention" in output


def test_status_does_not_ask_to_reissue_an_old_intermediate(tmp_path, monkeypatch):
    thirteen_months_ago = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=400)
    monkeypatch.setattr(issue, "_now", lambda: thirteen_months_ago)
    run(
        "pki_init_community",
        "--dir",
        str(tmp_path),
        "--community",
        "r",
        "--name",
        "R",
        "--intermediate",
    )
    output = run("pki_status", "--ca", str(tmp_path / "root"))
    assert "age 400d" in output
    assert "WARNING" not in output


def test_status_warns_of_expiry_within_90_days(community, tmp_path):
    issue_client(community, tmp_path / "out", "--fqdn", FQDN, "--organization", "R", "--days", "60")
    output = run("pki_status", "--ca", str(community / "intermediate"))
    assert "WARNING: expires in 59 days" in output


@pytest.mark.parametrize(
    ("age_days", "left_days", "expected"),
    [
        (30, 500, ()),
        (365, 183, ()),
        (366, 182, ("older than 12 months (366 days): reissue it",)),
        (100, 90, ("expires in 90 days",)),
        (500, 10, ("older than 12 months (500 days): reissue it", "expires in 10 days")),
        (600, -1, ("expired",)),
    ],
)
def test_certificate_warnings(age_days, left_days, expected):
    day = dt.timedelta(days=1)
    assert certificate_warnings(age_days * day, left_days * day) == expected


def test_generated_keys():
    assert generate_key("ec").curve.name == "secp256r1"
    with pytest.raises(Exception, match="unknown key type"):
        generate_key("dsa")
