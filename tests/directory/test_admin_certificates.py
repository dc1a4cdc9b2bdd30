"""Endpoint certificates in the admin: upload (PEM, DER) or paste, parsed facts, expiry warnings."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from directory.admin_certificates import DIGITAL_CERTIFICATE_URL
from directory.models import Resource
from security.trust.certificates import CertificateError, parse_certificate
from tests.factories import EndpointFactory

pytestmark = pytest.mark.django_db


def make_certificate(days_valid: int, name: str = "ep.example.org") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Directory Test CA")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days_valid))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.UniformResourceIdentifier(f"https://{name}/fhir")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def fingerprint(cert) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


@pytest.fixture(scope="module")
def long_lived():
    return make_certificate(730)


@pytest.fixture(scope="module")
def expiring():
    return make_certificate(30, "soon.example.org")


@pytest.fixture
def endpoint():
    content = EndpointFactory(name="Harbor FHIR")
    return Resource.objects.get(resource_type="Endpoint", logical_id=content["id"])


def change_url(row) -> str:
    return reverse("admin:directory_endpointrecord_change", args=[row.pk])


def post_certificate(client, row, **fields):
    data = {"content_json": row.content, "version": row.version_id, "certificate_use": "auth"}
    return client.post(change_url(row), {**data, **fields}, follow=True)


def stored_extension(row) -> dict:
    row.refresh_from_db()
    [ext] = [e for e in json.loads(row.content)["extension"] if e["url"] == DIGITAL_CERTIFICATE_URL]
    return {sub["url"]: sub for sub in ext["extension"]}


def test_der_ending_in_a_whitespace_byte_is_read_whole():
    """DER is binary: a signature whose last byte is 0x20 or 0x09-0x0d must not be trimmed."""
    for _ in range(2000):
        cert = make_certificate(30)
        if der(cert)[-1:].isspace():
            break
    else:
        pytest.fail("no certificate ending in a whitespace byte was generated")
    assert parse_certificate(der(cert)).fingerprint_display == fingerprint(cert)


def test_parse_certificate_reads_pem_der_and_bare_base64(long_lived):
    for data in (pem(long_lived), pem(long_lived).encode(), der(long_lived)):
        info = parse_certificate(data)
        assert info.subject == "CN=ep.example.org"
        assert info.issuer == "CN=Directory Test CA"
        assert info.sans == ("DNS:ep.example.org", "URI:https://ep.example.org/fhir")
        assert info.fingerprint_display == fingerprint(long_lived)
        assert not info.expires_within(90)
    assert parse_certificate(base64.b64encode(der(long_lived)).decode()).der == der(long_lived)
    assert parse_certificate(der(make_certificate(30))).expires_within(90)
    with pytest.raises(CertificateError):
        parse_certificate("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")


def test_upload_pem_file_stores_vhdir_extension(admin_client, endpoint, long_lived):
    upload = SimpleUploadedFile("ep.pem", pem(long_lived).encode())
    response = post_certificate(admin_client, endpoint, certificate_file=upload)
    assert response.status_code == 200
    subs = stored_extension(endpoint)
    assert base64.b64decode(subs["certificate"]["valueString"]) == der(long_lived)
    assert subs["use"]["valueCoding"]["code"] == "auth"
    assert subs["certificateStandard"]["valueCoding"]["code"] == "x.509v3"
    expected = long_lived.not_valid_after_utc.date().isoformat()
    assert subs["expirationDate"]["valueDate"] == expected
    assert endpoint.version_id == 2


def test_upload_der_file_and_parsed_fields_shown(admin_client, endpoint, long_lived):
    upload = SimpleUploadedFile("ep.der", der(long_lived))
    post_certificate(admin_client, endpoint, certificate_file=upload)
    response = admin_client.get(change_url(endpoint))
    body = response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert "CN=ep.example.org" in body
    assert "CN=Directory Test CA" in body
    assert "DNS:ep.example.org" in body
    assert fingerprint(long_lived) in body
    assert long_lived.not_valid_after_utc.strftime("%Y-%m-%d %H:%M") in body
    assert "Valid until" in body
    assert "cert-expiring" not in body


def test_paste_pem_replaces_certificate_of_same_use(admin_client, endpoint, long_lived, expiring):
    post_certificate(admin_client, endpoint, certificate_pem=pem(long_lived))
    endpoint.refresh_from_db()
    post_certificate(admin_client, endpoint, certificate_pem=pem(expiring))
    subs = stored_extension(endpoint)
    assert base64.b64decode(subs["certificate"]["valueString"]) == der(expiring)


def test_expiring_certificate_warns_with_message_and_badge(admin_client, endpoint, expiring):
    response = post_certificate(admin_client, endpoint, certificate_pem=pem(expiring))
    messages = [str(m) for m in response.context["messages"]]
    assert any("expires in 29 days" in m or "expires in 30 days" in m for m in messages)
    page = admin_client.get(change_url(endpoint)).content.decode()
    assert 'class="cert-expiring"' in page
    assert "Upload its replacement" in page
    listing = admin_client.get(reverse("admin:directory_endpointrecord_changelist"))
    assert 'class="cert-expiring"' in listing.content.decode()


def test_unreadable_certificate_is_an_error_and_nothing_changes(admin_client, endpoint):
    before = endpoint.content
    upload = SimpleUploadedFile("ep.pem", b"this is not a certificate")
    response = post_certificate(admin_client, endpoint, certificate_file=upload)
    assert "Not a readable X.509 certificate" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.content == before


@pytest.mark.parametrize("button", ["_save", "_continue"])
def test_expiry_warning_is_shown_once_whichever_save_button(
    admin_client, endpoint, expiring, button
):
    # "Save and continue editing" lands on the change page, which warns on its own GET.
    response = post_certificate(
        admin_client, endpoint, certificate_pem=pem(expiring), **{button: "1"}
    )
    warnings = [str(m) for m in response.context["messages"] if "Upload its replacement" in str(m)]
    assert len(warnings) == 1, warnings
