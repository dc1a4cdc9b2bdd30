"""An administrator finds a duplicate Practitioner on "Possible duplicates" and merges it in a real
browser: the role naming the merged record now names the kept one, the merged record is deleted
with its history kept, and the merge is recorded. Support staff can neither list nor merge.

Headless Debian Chromium driven by Playwright against the live server (tests/browser_support.py).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from directory import storage
from directory.models import MergeRecord, Resource, ResourceVersion
from tests.browser_support import sign_in as sign_in_as
from tests.factories import OrganizationFactory, PractitionerFactory, PractitionerRoleFactory
from tests.security.staff import make_staff

# Full flush, not available_apps: the flush's post_migrate re-creates the role groups.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN, SUPPORT = "ada.admin", "sam.support"
DUPLICATES = "/admin/directory/mergerecord/duplicates/"
ADDRESS = {"line": ["12 Harbor St"], "city": "Portland", "postalCode": "04101"}


@pytest.fixture
def twins():
    """One practitioner stored twice (same family name and initial, one phone and address), a
    colleague at the same address, and a role naming the record to be merged away."""
    phone = {"system": "phone", "value": "(207) 555-0142"}
    PractitionerFactory(
        id="osei-1", name=[{"family": "Osei", "given": ["Ama"]}], telecom=[phone], address=[ADDRESS]
    )
    PractitionerFactory(
        id="osei-2",
        name=[{"family": "Osei", "given": ["A."]}],
        telecom=[{**phone, "value": "207-555-0142"}],
        address=[{**ADDRESS, "line": ["12 HARBOR ST"]}],
    )
    PractitionerFactory(
        id="mensah", name=[{"family": "Mensah", "given": ["Kofi"]}], address=[ADDRESS]
    )
    org = OrganizationFactory(id="harbor", name="Harbor Clinic")
    PractitionerRoleFactory(
        id="role-1",
        practitioner={"reference": "Practitioner/osei-2"},
        organization={"reference": f"Organization/{org['id']}"},
    )


def sign_in(page, username: str, next_path: str):
    make_staff(username, "admin" if username == ADMIN else "support")
    sign_in_as(page, username, next_path)


def test_administrator_finds_and_merges_a_duplicate_practitioner(page, twins):
    sign_in(page, ADMIN, "/admin/directory/mergerecord/")
    page.click("text=Possible duplicates")
    page.wait_for_url(lambda url: urlsplit(url).path == DUPLICATES)
    rows = page.locator("tr.duplicate-pair")
    assert rows.count() == 1
    row = rows.first
    assert "Ama Osei" in row.inner_text() and "(osei-2)" in row.inner_text()
    assert "Mensah" not in page.locator("#duplicates").inner_text()
    assert 80 <= int(row.locator(".score").inner_text()) <= 100
    assert {s.strip() for s in row.locator("td").nth(3).inner_text().split(",")} == {
        "address",
        "phone",
    }

    row.locator("button", has_text="Keep osei-1, merge osei-2").click()
    page.wait_for_load_state()
    assert (
        "Practitioner/osei-2 merged into Practitioner/osei-1"
        in page.locator(".messagelist").inner_text()
    )
    assert page.locator("tr.duplicate-pair").count() == 0
    assert "No possible duplicates found." in page.content()

    role = json.loads(storage.read("PractitionerRole", "role-1").content)
    assert role["practitioner"]["reference"] == "Practitioner/osei-1"
    assert Resource.objects.get(resource_type="Practitioner", logical_id="osei-2").deleted
    methods = ResourceVersion.objects.filter(logical_id="osei-2").order_by("version_id")
    assert list(methods.values_list("method", flat=True))[-1] == "DELETE"
    record = MergeRecord.objects.get()
    assert (record.actor, record.resource_type, record.kept_id, record.merged_id) == (
        ADMIN,
        "Practitioner",
        "osei-1",
        "osei-2",
    )
    assert record.rewritten == ["PractitionerRole/role-1"]

    # The merge audit lists it.
    page.goto("/admin/directory/mergerecord/")
    assert "osei-2" in page.locator("#result_list").inner_text()


def test_support_staff_cannot_list_or_merge_duplicates(page, twins):
    sign_in(page, SUPPORT, "/admin/")
    response = page.goto(DUPLICATES)
    assert response.status == 403
    assert "Osei" not in page.content()
    # A forged merge form, with the page's CSRF token, is refused too.
    token = page.context.cookies()
    csrf = next(c["value"] for c in token if c["name"] == "csrftoken")
    result = page.request.post(
        f"{DUPLICATES}merge/",
        form={"type": "Practitioner", "keep": "osei-1", "merge": "osei-2"},
        headers={"X-CSRFToken": csrf, "Referer": page.url},
    )
    assert result.status == 403
    assert "CSRF" not in result.text()  # refused for want of permission, not of a token
    assert not Resource.objects.get(resource_type="Practitioner", logical_id="osei-2").deleted
    assert not MergeRecord.objects.exists()
