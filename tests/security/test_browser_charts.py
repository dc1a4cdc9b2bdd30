"""The charts and the verification tools in a real browser: the SVG charts render under the
admin's Content-Security-Policy with no violation reported, and an administrator verifies records
and finds the stale ones with the "not verified in N days" filter.

Headless Debian Chromium driven by Playwright against the live server (tests/browser_support.py).
Chromium reports every CSP refusal on the console; a control below shows the listener hears one.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from directory import storage
from directory.models import VerificationRecord
from security.models import ApiClient, ApiKey, RequestAudit
from tests.browser_support import csp_violations, sign_in
from tests.factories import OrganizationFactory
from tests.security.staff import make_staff

# Full flush, not available_apps: the flush's post_migrate re-creates the role groups.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS = "/admin/charts/"
ORGANIZATIONS = "/admin/directory/organizationrecord/"


@pytest.fixture
def traffic():
    acme = ApiClient.objects.create(name="Acme Health")
    now = timezone.now()
    # The two answered requests sit in one hourly bar whatever the clock: half an hour into the
    # previous hour (run at 10:05, "5 and 6 minutes ago" would straddle 10:00 and draw two bars).
    hour = now.replace(minute=0, second=0, microsecond=0)
    times = {"ok": [hour - timedelta(minutes=30), hour - timedelta(minutes=29)]}
    times["insufficient_scope"] = [now - timedelta(minutes=7)]
    times["key_revoked"] = [now - timedelta(minutes=65)]
    for outcome, moment in ((o, t) for o, ts in times.items() for t in ts):
        RequestAudit.objects.create(
            time=moment,
            client=acme,
            client_name=acme.name,
            key_prefix="acmekey1",
            method="GET",
            path="/fhir/Organization",
            status=200 if outcome == "ok" else 403,
            outcome=outcome,
            duration_ms=2,
        )
    ApiKey.objects.create(
        client=acme, prefix="soon0001", key_hash="x", expires_at=now + timedelta(days=30)
    )
    return acme


def test_the_charts_render_as_svg_with_no_csp_violation(page, traffic):
    make_staff("ada.admin", "admin")
    sign_in(page, "ada.admin", "/admin/")
    page.click("#charts-link a")
    page.wait_for_url(lambda url: urlsplit(url).path == CHARTS)
    for chart in ("requests-chart", "refusals-chart", "keys-chart", "expiry-chart"):
        box = page.locator(f"svg#{chart}").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 50, chart
    assert page.locator("#requests-chart rect[data-series=ok]").count() == 1
    assert page.locator("#refusals-chart rect[data-series=insufficient_scope]").count() == 1
    assert page.locator("#expiry-chart circle[data-lane='API key']").count() == 1
    # The stylesheet came from 'self' and applied (a CSP refusal would leave the default).
    assert (
        page.locator("svg#requests-chart").evaluate("e => getComputedStyle(e).maxWidth") == "100%"
    )

    # One client, chosen in the form, then back to a wider range: still no violation.
    page.select_option("#id_client", label="Acme Health")
    page.select_option("#id_range", "7d")
    page.click("#chart-choice input[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#requests-chart rect[data-series=key_revoked]").count() == 1
    assert csp_violations(page) == []

    # Control: an inline style attribute is refused, and the listener hears it.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    page.wait_for_timeout(200)
    assert csp_violations(page), page.console_errors
    page.console_errors.clear()  # heard as it should be: not a failure of this test


def test_an_auditor_sees_the_request_charts_but_not_the_expiry_timeline(page, traffic):
    make_staff("audrey", "auditor")
    sign_in(page, "audrey", CHARTS)
    assert page.locator("svg#requests-chart").count() == 1
    assert page.locator("svg#expiry-chart").count() == 0


def test_an_administrator_verifies_records_and_filters_the_stale_ones(page):
    orgs = {name: OrganizationFactory(name=name) for name in ("Harbor Clinic", "Summit Hospital")}
    make_staff("ada.admin", "admin")
    sign_in(page, "ada.admin", ORGANIZATIONS)

    row = page.locator("#result_list tbody tr", has_text="Harbor Clinic")
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "verify_records")
    page.click("button[name=index]")
    page.wait_for_selector("#verify-form")
    page.select_option("#id_status", "complete")
    page.select_option("#id_process", "primary")
    page.fill("#id_note", "NPPES lookup")
    page.click("#verify-form input[name=apply]")
    page.wait_for_load_state()
    assert "1 record(s) verified" in page.locator(".messagelist").inner_text()

    harbor = json.loads(storage.read("Organization", orgs["Harbor Clinic"]["id"]).content)
    [extension] = harbor["extension"]
    assert extension["valueCodeableConcept"]["coding"][0]["code"] == "complete"
    record = VerificationRecord.objects.get()
    assert (record.actor, record.process, record.note) == ("ada.admin", "primary", "NPPES lookup")

    page.click("#changelist-filter a:text('Not verified in 30 days')")
    page.wait_for_load_state()
    listed = page.locator("#result_list").inner_text()
    assert "Summit Hospital" in listed and "Harbor Clinic" not in listed

    # A year and a day later, Harbor counts as stale too.
    VerificationRecord.objects.update(time=timezone.now() - timedelta(days=366))
    page.click("#changelist-filter a:text('Not verified in 365 days')")
    page.wait_for_load_state()
    listed = page.locator("#result_list").inner_text()
    assert "Summit Hospital" in listed and "Harbor Clinic" in listed
    assert csp_violations(page) == []
