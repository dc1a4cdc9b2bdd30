"""The admin's charts page: who sees which chart, what the counts are, and that it stays SVG only.

Counts are checked against rows written here, bucket by bucket, read back from the SVG's hover
titles; the SVG itself is parsed as XML (an outside oracle for well-formed markup).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from security import charts
from security.models import ApiClient, ApiKey, RequestAudit
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
    assert browser.get(URL, {"range": "forever", "client": "x"}).status_code == 200


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


def test_one_grouped_query_reads_the_audit_table(traffic):
    """Every audit chart comes from one GROUP BY, whatever the number of rows or clients."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    browser = signed_in_as(make_staff("ada", "admin"))
    with CaptureQueriesContext(connection) as queries:
        assert browser.get(URL, {"range": "7d"}).status_code == 200
    audit_reads = [q["sql"] for q in queries if "security_requestaudit" in q["sql"]]
    assert len(audit_reads) == 1
    assert "GROUP BY" in audit_reads[0] and "COUNT(*)" in audit_reads[0]


def test_requests_of_a_deleted_client_stay_counted(traffic):
    traffic["zenith"].delete()
    html = signed_in_as(make_staff("ada", "admin")).get(URL).content.decode()
    assert series_total(svg(html, "requests-chart"), "key_revoked") == 1
    assert "(no client): zenkey01…: 2" in hover_texts(svg(html, "keys-chart"))
