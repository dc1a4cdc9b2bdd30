"""An administrator creates and edits an Organization and a Practitioner through the forms
derived from the StructureDefinitions, with no JSON: NPI checked as typed and refused next to its
field on save, a reference picked by searching the directory, everything within the admin's CSP.

Headless Debian Chromium driven by Playwright against the live server (tests/browser_support.py).
"""

from __future__ import annotations

import json

import pytest

from directory import storage
from directory.models import Resource
from tests.browser_support import sign_in
from tests.factories import NPI_SYSTEM, OrganizationFactory, make_npi
from tests.security.staff import make_staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "ada.admin"
BAD_NPI = "1234567890"  # wrong check digit


@pytest.fixture
def page(page):
    """The shared page (tests/conftest.py), signed in as an administrator."""
    make_staff(ADMIN, "admin")
    sign_in(page, ADMIN, "/admin/")
    return page


def field(name: str) -> str:
    return f'[name="{name}"]'


def save(page, continue_editing: bool = False):
    page.click(f"input[type=submit][name={'_continue' if continue_editing else '_save'}]")
    page.wait_for_load_state()


def only(resource_type: str) -> dict:
    [row] = Resource.objects.filter(resource_type=resource_type, deleted=False)
    return json.loads(storage.read(resource_type, row.logical_id).content)


def test_administrator_creates_and_edits_an_organization_without_json(page):
    summit = OrganizationFactory(name="Summit Health System")
    npi = make_npi(42)
    page.goto("/admin/directory/organizationrecord/add/")
    assert page.locator("#structured-form").is_visible()
    assert not page.locator("#id_content_json").is_visible()
    page.fill(field("f.name.0"), "Harbor Clinic")
    page.select_option(field("f.active.0"), "true")
    page.fill(field("f.identifier.0.system"), NPI_SYSTEM)
    page.fill(field("f.identifier.0.value"), npi)
    page.select_option(field("f.telecom.0.system"), "phone")
    page.fill(field("f.telecom.0.value"), "207-555-0100")
    # The parent organization is found by typing part of its name.
    page.fill(field("f.partOf.0.reference"), "Summit")
    page.click("button:text('Summit Health System')")
    assert page.input_value(field("f.partOf.0.reference")) == f"Organization/{summit['id']}"
    save(page)

    assert "was added successfully" in page.locator(".messagelist").inner_text()
    [harbor] = [
        json.loads(storage.read("Organization", r.logical_id).content)
        for r in Resource.objects.filter(resource_type="Organization", sort_name="harbor clinic")
    ]
    assert harbor["active"] is True
    assert harbor["identifier"] == [{"system": NPI_SYSTEM, "value": npi}]
    assert harbor["telecom"] == [{"system": "phone", "value": "207-555-0100"}]
    assert harbor["partOf"] == {
        "reference": f"Organization/{summit['id']}",
        "display": "Summit Health System",
    }

    # Edit: rename and add an address; what was there stays.
    page.click("#result_list a:text('Harbor Clinic')")
    assert page.input_value(field("f.identifier.0.value")) == npi
    page.fill(field("f.name.0"), "Harbor Clinic East")
    page.fill(field("f.address.0.line"), "1 Harbor Way\nSuite 2")
    page.fill(field("f.address.0.city"), "Portland")
    page.fill(field("f.address.0.state"), "ME")
    save(page)

    assert "was changed successfully" in page.locator(".messagelist").inner_text()
    after = json.loads(storage.read("Organization", harbor["id"]).content)
    assert after["name"] == "Harbor Clinic East"
    assert after["address"] == [
        {"line": ["1 Harbor Way", "Suite 2"], "city": "Portland", "state": "ME"}
    ]
    assert after["identifier"] == harbor["identifier"] and after["partOf"] == harbor["partOf"]
    assert after["meta"]["versionId"] == "2"


def test_administrator_creates_a_practitioner_and_a_bad_npi_is_refused_at_its_field(page):
    page.goto("/admin/directory/practitionerrecord/add/")
    page.select_option(field("f.active.0"), "true")
    page.fill(field("f.name.0.family"), "Okafor")
    page.fill(field("f.name.0.given"), "Chidi")
    page.fill(field("f.identifier.0.system"), NPI_SYSTEM)
    page.fill(field("f.identifier.0.value"), BAD_NPI)
    # Checked as typed, by the server's own rule, next to the field.
    note = page.locator(f"{field('f.identifier.0.value')} + .identifier-check")
    note.filter(has_text="not a valid NPI").wait_for()
    assert "invalid" in note.get_attribute("class")
    save(page)

    # Saving anyway: refused by storage, the message beside the value, nothing stored.
    value_block = page.locator(".structured-input", has=page.locator(field("f.identifier.0.value")))
    assert "not a valid NPI" in value_block.locator(".errorlist").inner_text()
    assert not Resource.objects.filter(resource_type="Practitioner").exists()
    # What was typed is still there to correct.
    assert page.input_value(field("f.name.0.family")) == "Okafor"

    good = make_npi(77)
    page.fill(field("f.identifier.0.value"), good)
    page.wait_for_function(
        "() => document.querySelector('.identifier-check').classList.contains('valid')"
    )
    save(page, continue_editing=True)

    assert "was added successfully" in page.locator(".messagelist").inner_text()
    created = only("Practitioner")
    assert created["name"] == [{"family": "Okafor", "given": ["Chidi"]}]
    assert created["identifier"] == [{"system": NPI_SYSTEM, "value": good}]

    # Edit on the page "Save and continue" returned to: a second given name and an email.
    page.fill(field("f.name.0.given"), "Chidi\nEmeka")
    page.select_option(field("f.telecom.0.system"), "email")
    page.fill(field("f.telecom.0.value"), "chidi@example.org")
    page.click("#element-telecom button.add-another")  # a second one, without saving first
    page.select_option(field("f.telecom.1.system"), "phone")
    page.fill(field("f.telecom.1.value"), "207-555-0199")
    save(page)
    edited = only("Practitioner")
    assert edited["name"] == [{"family": "Okafor", "given": ["Chidi", "Emeka"]}]
    assert edited["telecom"] == [
        {"system": "email", "value": "chidi@example.org"},
        {"system": "phone", "value": "207-555-0199"},
    ]
    assert edited["meta"]["versionId"] == "2"
