"""A directory administrator manages the directory in a real browser: search, edit with the API's
validation, history, add, delete (and its refusal while referenced), an Endpoint certificate
upload; support staff are turned away from the directory pages.

Headless Debian Chromium driven by Playwright against the live server (tests/browser_support.py).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from directory import storage
from directory.errors import Gone
from directory.models import Resource
from tests.browser_support import sign_in
from tests.factories import (
    NPI_SYSTEM,
    EndpointFactory,
    OrganizationFactory,
    PractitionerFactory,
    PractitionerRoleFactory,
)
from tests.security.staff import make_staff

# Full flush, not available_apps: the flush's post_migrate re-creates the role groups.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN, SUPPORT = "ada.admin", "sam.support"
HARBOR_NPI = "1234567893"
ORGANIZATIONS = "/admin/directory/organizationrecord/"


@pytest.fixture
def directory():
    """An organization to manage and a decoy, a practitioner referenced by a role (and so the
    organization too), one referenced by nothing, and an endpoint."""
    harbor = OrganizationFactory(
        name="Harbor Clinic", identifier=[{"system": NPI_SYSTEM, "value": HARBOR_NPI}]
    )
    OrganizationFactory(name="Summit Hospital")
    muller = PractitionerFactory(name=[{"family": "Müller", "given": ["Anna"]}])
    okafor = PractitionerFactory(name=[{"family": "Okafor", "given": ["Chidi"]}])
    PractitionerRoleFactory(
        practitioner={"reference": f"Practitioner/{muller['id']}"},
        organization={"reference": f"Organization/{harbor['id']}"},
    )
    endpoint = EndpointFactory(name="Harbor FHIR")
    return {"harbor": harbor, "okafor": okafor, "endpoint": endpoint}


@pytest.fixture
def admin_page(page, directory):
    make_staff(ADMIN, "admin")
    sign_in(page, ADMIN, ORGANIZATIONS)
    return page


def row_pk(resource_type: str, logical_id: str) -> int:
    return Resource.objects.get(resource_type=resource_type, logical_id=logical_id).pk


def stored(resource_type: str, logical_id: str) -> dict:
    return json.loads(storage.read(resource_type, logical_id).content)


def search(page, term: str):
    page.fill("#searchbar", term)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    return page.locator("#result_list tbody tr")


def messages(page) -> str:
    return page.locator(".messagelist").inner_text()


def edit_json(page, change):
    """Rewrites the resource JSON in the "Advanced (JSON)" tab as an editor would, then saves."""
    page.click("#tab-json")
    field = page.locator("#id_content_json")
    content = json.loads(field.input_value())
    change(content)
    field.fill(json.dumps(content, indent=2))
    page.click("input[type=submit][name=_save]")
    page.wait_for_load_state()


# ---------------------------------------------------------------- search, edit, history


def test_administrator_finds_edits_and_sees_history_of_an_organization(
    admin_page, directory, tmp_path
):
    page = admin_page
    for term in ("Harbor", HARBOR_NPI):
        rows = search(page, term)
        assert rows.count() == 1, term
        assert "Harbor Clinic" in rows.inner_text()
        assert "Summit Hospital" not in page.locator("#result_list").inner_text()

    page.click("#result_list a:text('Harbor Clinic')")
    page.wait_for_selector("#structured-form")
    look_at_the_change_page(page, tmp_path)
    edit_json(page, lambda content: content.update(name="Harbor Clinic East"))

    assert urlsplit(page.url).path == ORGANIZATIONS
    assert "was changed successfully" in messages(page)
    assert "Harbor Clinic East" in page.locator("#result_list").inner_text()
    assert stored("Organization", directory["harbor"]["id"])["name"] == "Harbor Clinic East"

    page.click("#result_list a:text('Harbor Clinic East')")
    page.click("a:text('Version history')")
    versions = page.locator("#version-history tr.version th").all_inner_texts()
    assert versions == ["2", "1"]


def look_at_the_change_page(page, tmp_path):
    """One screenshot for a person to look at; the test checks the page has its parts."""
    screenshot = tmp_path / "organization-change.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert page.locator(".resource-summary").is_visible()
    assert page.locator("#structured-form").is_visible()
    assert not page.locator("#id_content_json").is_visible()  # behind its tab


# ---------------------------------------------------------------- validation


def test_invalid_content_is_named_on_the_form_and_nothing_is_stored(admin_page, directory):
    page = admin_page
    logical_id = directory["harbor"]["id"]
    before = storage.read("Organization", logical_id)
    page.goto(f"{ORGANIZATIONS}{row_pk('Organization', logical_id)}/change/")

    edit_json(page, lambda content: content.update(active="maybe"))

    errors = page.locator(".field-content_json .errorlist").inner_text()
    assert "Organization.active" in errors
    assert "was changed successfully" not in page.content()
    after = storage.read("Organization", logical_id)
    assert (after.version_id, after.content) == (before.version_id, before.content)


# ---------------------------------------------------------------- add and delete


def test_administrator_adds_a_location(admin_page):
    page = admin_page
    page.goto("/admin/directory/locationrecord/add/")
    edit_json(page, lambda content: content.update(name="Riverside Annex"))

    assert "was added successfully" in messages(page)
    assert "Riverside Annex" in page.locator("#result_list").inner_text()
    [row] = Resource.objects.filter(resource_type="Location", sort_name="riverside annex")
    assert stored("Location", row.logical_id)["status"] == "active"


def test_administrator_deletes_an_unreferenced_practitioner(admin_page, directory):
    page = admin_page
    logical_id = directory["okafor"]["id"]
    page.goto(f"/admin/directory/practitionerrecord/{row_pk('Practitioner', logical_id)}/delete/")
    assert "Are you sure" in page.content()
    page.click("input[type=submit]")

    assert "was deleted successfully" in messages(page)
    assert "Chidi Okafor" not in page.locator("#changelist").inner_text()
    with pytest.raises(Gone):
        storage.read("Practitioner", logical_id)


def test_deleting_a_referenced_organization_is_refused(admin_page, directory):
    page = admin_page
    logical_id = directory["harbor"]["id"]
    page.goto(f"{ORGANIZATIONS}{row_pk('Organization', logical_id)}/delete/")
    page.click("input[type=submit]")

    refusal = page.locator(".messagelist .error").inner_text()
    assert "Not deleted" in refusal
    assert "still referenced by PractitionerRole/" in refusal
    assert stored("Organization", logical_id)["name"] == "Harbor Clinic"


# ---------------------------------------------------------------- endpoint certificate


def expiring_certificate_pem(days: int, name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Browser Test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def colon_fingerprint(pem: bytes) -> str:
    digest = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def test_endpoint_certificate_upload_shows_its_facts_and_the_expiry_warning(
    admin_page, directory, tmp_path
):
    page = admin_page
    pem = expiring_certificate_pem(30, "soon.example.org")
    certificate_file = tmp_path / "endpoint.pem"
    certificate_file.write_bytes(pem)
    logical_id = directory["endpoint"]["id"]
    page.goto(f"/admin/directory/endpointrecord/{row_pk('Endpoint', logical_id)}/change/")

    page.set_input_files("#id_certificate_file", str(certificate_file))
    page.click("input[type=submit][name=_continue]")
    page.wait_for_selector("table.certificate")

    certificate = page.locator("table.certificate").inner_text()
    assert "CN=soon.example.org" in certificate
    assert colon_fingerprint(pem) in certificate
    # The admin's CSS upper-cases table captions, and inner_text() reports what is rendered.
    assert re.search(r"expires in (29|30) days", certificate, re.IGNORECASE)
    warnings = page.locator(".messagelist .warning").all_inner_texts()
    assert len(warnings) == 1, warnings
    assert re.search(r"auth certificate of this endpoint expires in (29|30) days", warnings[0])
    assert "extension" in stored("Endpoint", logical_id)


# ---------------------------------------------------------------- support staff


def test_support_staff_are_refused_the_organization_pages(page, directory):
    make_staff(SUPPORT, "support")
    sign_in(page, SUPPORT, "/admin/")
    change = f"{ORGANIZATIONS}{row_pk('Organization', directory['harbor']['id'])}/change/"
    for address in (change, f"{ORGANIZATIONS}add/"):
        response = page.goto(address)
        assert response.status == 403, address
        assert "403 Forbidden" in page.content()
        assert "Harbor Clinic" not in page.content()
