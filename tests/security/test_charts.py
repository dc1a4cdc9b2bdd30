"""The admin's charts page: who sees which chart, what the counts are, and that it stays SVG only.

Counts are checked against rows written here, bucket by bucket, read back from the SVG's hover
titles; the SVG itself is parsed as XML (an outside oracle for well-formed markup).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from security import audit_rollup, charts
from security.models import (
    ApiClient,
    ApiKey,
    AuditHourlyCount,
    AuditRollupState,
    RequestAudit,
)
from tests.security.staff import make_staff, signed_in_as

pytestmark = pytest.mark.django_db
URL = "/admin/charts/"
SVG = "{http://www.w3.org/2000/svg}"


def audit(client, outcome="ok", ago=timedelta(minutes=5), key_prefix=""):
    return RequestAudit.objects.create(
        time=timezone.now() - ago,
        client=client,
        client_name=client.name if client else "",
        key_prefix=key_prefix,
        method="GET",
        path="/fhir/Organization",
        status=200 if outcome == "ok" else 403,
        outcome=outcome,
        duration_ms=3,
    )


@pytest.fixture
def traffic():
    """Two clients: acme with 3 served and 2 refused (scope), zenith 1 served, 1 refused (key)."""
    acme = ApiClient.objects.create(name="Acme Health")
    zenith = ApiClient.objects.create(name="Zenith <Plans>")
    for _ in range(3):
        audit(acme, key_prefix="acmekey1")
    audit(acme, "insufficient_scope", key_prefix="acmekey1")
    audit(acme, "insufficient_scope", ago=timedelta(hours=3), key_prefix="acmekey1")
    audit(zenith, key_prefix="zenkey01")
    audit(zenith, "key_revoked", key_prefix="zenkey01")
    audit(None, "ok", ago=timedelta(days=40))  # outside every range but 90 days
    return {"acme": acme, "zenith": zenith}


def svg(html: str, chart_id: str) -> ET.Element:
    match = re.search(rf'<svg id="{chart_id}".*?</svg>', html, re.S)
    assert match, f"no {chart_id} in the page"
    return ET.fromstring(match.group(0))  # noqa: S314 (our own page, not untrusted input)


def hover_texts(element: ET.Element) -> list[str]:
    return [title.text for title in element.iter(f"{SVG}title")]


def series_total(element: ET.Element, series: str) -> int:
    return sum(
        int(rect.find(f"{SVG}title").text.rsplit(": ", 1)[1])
        for rect in element.iter(f"{SVG}rect")
        if rect.get("data-series") == series
    )


# ------------------------------------------------------------------ who sees what


@pytest.mark.parametrize("role", ["admin", "support", "auditor"])
def test_every_role_sees_the_request_charts(role, traffic):
    response = signed_in_as(make_staff("staff", role)).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for chart_id in ("requests-chart", "refusals-chart", "keys-chart"):
        svg(html, chart_id)


def test_only_those_who_see_the_trust_dashboard_see_the_expiry_timeline(traffic):
    auditor = signed_in_as(make_staff("audrey", "auditor")).get(URL).content.decode()
    support = signed_in_as(make_staff("sam", "support")).get(URL).content.decode()
    assert 'id="expiry-chart"' not in auditor
    assert 'id="expiry-chart"' in support


def test_staff_without_any_of_the_permissions_are_refused(django_user_model):
    plain = django_user_model.objects.create_user("plain", is_staff=True)
    assert signed_in_as(plain).get(URL).status_code == 403


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_index_links_the_page_for_those_who_may_see_it(django_user_model):
    assert URL in signed_in_as(make_staff("audrey", "auditor")).get("/admin/").content.decode()
    plain = django_user_model.objects.create_user("plain", is_staff=True)
    assert URL not in signed_in_as(plain).get("/admin/").content.decode()


# ------------------------------------------------------------------ the counts


def test_counts_by_outcome_overall_and_for_one_client(traffic):
    browser = signed_in_as(make_staff("ada", "admin"))
    html = browser.get(URL).content.decode()
    requests = svg(html, "requests-chart")
    assert series_total(requests, "ok") == 4
    assert series_total(requests, "insufficient_scope") == 2
    assert series_total(requests, "key_revoked") == 1
    refusals = svg(html, "refusals-chart")
    assert series_total(refusals, "ok") == 0
    assert series_total(refusals, "insufficient_scope") == 2
    # The row three hours back lands in its own hour bucket.
    assert len([t for t in hover_texts(refusals) if "insufficient_scope" in t]) == 2

    one = browser.get(URL, {"client": traffic["zenith"].pk}).content.decode()
    assert series_total(svg(one, "requests-chart"), "ok") == 1
    assert series_total(svg(one, "refusals-chart"), "key_revoked") == 1
    assert series_total(svg(one, "requests-chart"), "insufficient_scope") == 0


def test_the_range_bounds_what_is_counted(traffic):
    browser = signed_in_as(make_staff("ada", "admin"))
    recent = svg(browser.get(URL, {"range": "30d"}).content.decode(), "requests-chart")
    wider = svg(browser.get(URL, {"range": "90d"}).content.decode(), "requests-chart")
    assert series_total(recent, "ok") == 4
    assert series_total(wider, "ok") == 5
    # An unknown range falls back to the default rather than failing.
    for client in ("x", "²", "9" * 40, "-1", ""):
        response = browser.get(URL, {"range": "forever", "client": client})
        assert response.status_code == 200, client
        assert series_total(svg(response.content.decode(), "requests-chart"), "ok") == 4


def test_key_use_per_client_and_names_escaped(traffic):
    html = signed_in_as(make_staff("ada", "admin")).get(URL).content.decode()
    keys = hover_texts(svg(html, "keys-chart"))
    assert keys == ["Acme Health: acmekey1…: 5", "Zenith <Plans>: zenkey01…: 2"]
    assert "Zenith <Plans>" not in html  # escaped in the page, parsed back above
    assert "Zenith &lt;Plans&gt;" in html


def test_the_client_table_counts_requests_and_refusals(traffic):
    html = signed_in_as(make_staff("ada", "admin")).get(URL).content.decode()
    table = html.split('id="client-rows"')[1].split("</table>")[0]
    assert re.search(r"Acme Health</a></td>\s*<td>5</td><td>2</td>", table)
    assert re.search(r"Zenith &lt;Plans&gt;</a></td>\s*<td>2</td><td>1</td>", table)


def test_the_expiry_timeline_places_keys_inside_the_window_only(traffic):
    now = timezone.now()
    acme = traffic["acme"]
    ApiKey.objects.create(
        client=acme, prefix="soon0001", key_hash="x", expires_at=now + timedelta(days=20)
    )
    ApiKey.objects.create(
        client=acme, prefix="late0001", key_hash="x", expires_at=now + timedelta(days=900)
    )
    ApiKey.objects.create(
        client=acme, prefix="gone0001", key_hash="x", state=ApiKey.RETIRED, expires_at=now
    )
    html = signed_in_as(make_staff("ada", "admin")).get(URL).content.decode()
    texts = hover_texts(svg(html, "expiry-chart"))
    assert [t.split(" (")[0] for t in texts] == ["API key: Acme Health: soon0001…"]


def test_no_script_and_no_inline_style_in_the_page(traffic):
    response = signed_in_as(make_staff("ada", "admin")).get(URL)
    html = response.content.decode()
    chart_part = html.split('id="content-main"')[1]
    assert "<script" not in chart_part
    assert "style=" not in chart_part and "<style" not in chart_part
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_buckets_cover_the_range_without_gaps():
    now = timezone.now()
    for chosen in charts.RANGES.values():
        start, end = charts.window(chosen, now)
        buckets = charts.bucket_starts(chosen, start, end)
        assert end - start == chosen.span
        assert buckets[0] == start and buckets[-1] < end and buckets[-1] <= now
        assert len(buckets) == len(set(buckets))


def test_settled_hours_are_read_from_the_rollup_and_counted_once(traffic):
    """Once caught up, views read the audit only since the boundary, and count nothing twice."""
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call_command("rollup_audit", stdout=io.StringIO())
    browser = signed_in_as(make_staff("ada", "admin"))
    first = svg(browser.get(URL, {"range": "90d"}).content.decode(), "requests-chart")
    rolled = AuditRollupState.objects.get().rolled_until
    assert rolled == audit_rollup.settled_until(timezone.now())
    # The rows hours and days back are in the rollup, the unsettled last minutes' are not.
    settled = RequestAudit.objects.filter(time__lt=rolled).count()
    assert settled >= 2
    assert AuditHourlyCount.objects.aggregate(n=Sum("requests"))["n"] == settled
    with CaptureQueriesContext(connection) as queries:
        again = svg(browser.get(URL, {"range": "90d"}).content.decode(), "requests-chart")
    assert hover_texts(again) == hover_texts(first)
    assert series_total(again, "ok") == 5 and series_total(again, "insufficient_scope") == 2
    audit_reads = [q["sql"] for q in queries if "security_requestaudit" in q["sql"]]
    assert len(audit_reads) == 1 and "COUNT(*)" in audit_reads[0]
    assert AuditHourlyCount.objects.aggregate(n=Sum("requests"))["n"] == settled


def test_the_rollup_waits_for_an_hour_to_settle_and_never_repeats_one(traffic):
    now = timezone.now()
    oldest, whole = now - timedelta(days=100), timedelta(days=101)
    boundary = audit_rollup.roll_up(now, oldest, whole)
    assert boundary <= now - audit_rollup.SETTLE and boundary.minute == 0
    rows = AuditHourlyCount.objects.count()
    assert audit_rollup.roll_up(now, oldest, whole) == boundary
    assert AuditHourlyCount.objects.count() == rows
    # A later hour settles: only its rows are added.
    audit(traffic["acme"], ago=now - boundary - timedelta(minutes=30))
    later = audit_rollup.roll_up(boundary + timedelta(hours=2), oldest, whole)
    assert later == boundary + timedelta(hours=1)
    assert rolled_up() == RequestAudit.objects.filter(time__gte=oldest, time__lt=later).count()


def rolled_up() -> int:
    return AuditHourlyCount.objects.aggregate(n=Sum("requests"))["n"] or 0


def test_a_page_view_rolls_up_a_bounded_step_and_the_charts_stay_exact(traffic):
    """After a long pause the view rolls up one day; the rest is read raw, counts unchanged."""
    browser = signed_in_as(make_staff("ada", "admin"))
    html = browser.get(URL, {"range": "90d"}).content.decode()
    oldest = charts.window(charts.LONGEST, timezone.now())[0]
    assert AuditRollupState.objects.get().rolled_until == oldest + audit_rollup.MAX_STEP
    assert series_total(svg(html, "requests-chart"), "ok") == 5
    assert series_total(svg(html, "requests-chart"), "insufficient_scope") == 2


def test_the_command_catches_up_in_full(traffic):
    from django.core.management import call_command

    call_command("rollup_audit", stdout=io.StringIO())
    rolled = AuditRollupState.objects.get().rolled_until
    assert rolled == audit_rollup.settled_until(timezone.now())
    assert rolled_up() == RequestAudit.objects.filter(time__lt=rolled).count() >= 2


def test_requests_of_a_deleted_client_stay_counted(traffic):
    traffic["zenith"].delete()
    html = signed_in_as(make_staff("ada", "admin")).get(URL).content.decode()
    assert series_total(svg(html, "requests-chart"), "key_revoked") == 1
    assert "(no client): zenkey01…: 2" in hover_texts(svg(html, "keys-chart"))


def test_a_roll_up_that_lost_the_race_counts_nothing(traffic, monkeypatch):
    """Seen as another process would: it read the old boundary, someone else moved it first."""
    now = timezone.now()
    oldest, whole = now - timedelta(days=100), timedelta(days=101)
    boundary = audit_rollup.roll_up(now, oldest, whole)
    counted = rolled_up()
    stale = AuditRollupState(pk=1, rolled_until=oldest)
    monkeypatch.setattr(audit_rollup, "_locked_state", lambda: stale)
    assert audit_rollup.roll_up(now, oldest, whole) == boundary
    assert rolled_up() == counted
