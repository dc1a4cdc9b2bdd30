"""The admin's charts page: requests and refusals over time, key use, and what expires when.

Counts are aggregated in the database over a bounded time range: settled hours from the hourly
rollup (security/audit_rollup.py), the rest from the audit table through its covering index;
Python only sums the two, fills empty buckets and draws the SVG (security/svg.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Trunc
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import SafeString

from . import audit_rollup, svg
from .dashboard import LIVE_KEY_STATES
from .dashboard import can_view as can_view_expiries
from .directory_port import directory
from .models import (
    ApiClient,
    ApiKey,
    AuditHourlyCount,
    CertificateIdentity,
    RequestAudit,
    RevocationList,
    TrustAnchor,
)

TEMPLATE = "admin/security/charts.html"
AUDIT_PERMISSION = "security.view_requestaudit"
OK = "ok"
# Outcomes drawn as their own layer; the rest are summed as "other" so the legend stays legible.
MOST_SERIES = 6
# Keys listed in the key-use chart, clients in the table.
MOST_KEYS = 20
MOST_CLIENTS = 50
# Requests no registered client made (refused before identification, or a deleted client).
NO_CLIENT = "(no client)"


@dataclass(frozen=True)
class Range:
    """A choice of the page: how far back, bucketed by hour or by day."""

    label: str
    span: timedelta
    bucket: str  # "hour" or "day", as Trunc names them
    fmt: str


RANGES = {
    "24h": Range("Last 24 hours", timedelta(hours=24), "hour", "%H:00"),
    "7d": Range("Last 7 days", timedelta(days=7), "hour", "%m-%d %H:00"),
    "30d": Range("Last 30 days", timedelta(days=30), "day", "%m-%d"),
    "90d": Range("Last 90 days", timedelta(days=90), "day", "%m-%d"),
}
DEFAULT_RANGE = "24h"
LONGEST = max(RANGES.values(), key=lambda r: r.span)
# The expiry timeline: a month back (what has just lapsed) to a year ahead.
TIMELINE_BEFORE, TIMELINE_AFTER = timedelta(days=30), timedelta(days=365)
LANES = ("Client certificate", "API key", "Trust anchor", "CRL next update", "Endpoint certificate")
# Narrows an audit table's rows (to one client, or not at all).
RowFilter = Callable[[QuerySet[Any]], QuerySet[Any]]


def can_view_audit(user: AbstractBaseUser | AnonymousUser) -> bool:
    return (
        isinstance(user, AbstractUser)
        and user.is_active
        and user.is_staff
        and user.has_perm(AUDIT_PERMISSION)
    )


def can_view(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whoever may see the audit or the trust dashboard sees the page, with their parts only."""
    return can_view_audit(user) or can_view_expiries(user)


def charts_page(request: HttpRequest) -> TemplateResponse:
    """The page; mounted behind admin.site.admin_view, so sign-in (and OTP) come first."""
    if not can_view(request.user):
        raise PermissionDenied
    now = timezone.now()
    range_key = request.GET.get("range", DEFAULT_RANGE)
    chosen = RANGES.get(range_key) or RANGES[range_key := DEFAULT_RANGE]
    context = {
        **admin.site.each_context(request),
        "title": "Charts",
        "ranges": [(key, r.label) for key, r in RANGES.items()],
        "range_key": range_key,
        "range": chosen,
    }
    if can_view_audit(request.user):
        context.update(_audit_charts(request, chosen, now))
    if can_view_expiries(request.user):
        context["expiry_chart"], context["expiries"] = expiry_timeline(now)
    return TemplateResponse(request, TEMPLATE, context)


def _audit_charts(request: HttpRequest, chosen: Range, now: datetime) -> dict[str, Any]:
    client = _chosen_client(request.GET.get("client", ""))
    start, end = window(chosen, now)

    def rows_of(queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset if client is None else queryset.filter(client=client)

    groups = grouped(rows_of, chosen.bucket, start, end, now)
    names = client_names(groups)
    buckets = bucket_starts(chosen, start, end)
    counts = counts_by_bucket(groups)
    refusals = {key: n for key, n in counts.items() if key[1] != OK}
    return {
        "clients": ApiClient.objects.order_by("name").values_list("pk", "name"),
        "client": client,
        "requests_chart": svg.stacked_bars(
            "requests-chart", "Requests by outcome", buckets, layers(buckets, counts), chosen.fmt
        ),
        "refusals_chart": svg.stacked_bars(
            "refusals-chart", "Refusals by reason", buckets, layers(buckets, refusals), chosen.fmt
        ),
        "key_chart": svg.horizontal_bars(
            "keys-chart", "Requests per API key", key_use(groups, names)
        ),
        "client_rows": per_client(groups, names) if client is None else [],
    }


def _chosen_client(value: str) -> ApiClient | None:
    """The client of the `client` parameter; anything but a plausible id means all clients."""
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        return None
    return ApiClient.objects.filter(pk=int(value)).first()


def window(chosen: Range, now: datetime) -> tuple[datetime, datetime]:
    """Whole buckets: from the start of the oldest bucket to the end of the current one."""
    step = timedelta(hours=1) if chosen.bucket == "hour" else timedelta(days=1)
    current = _truncate(now, chosen.bucket)
    return current + step - chosen.span, current + step


def _truncate(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(timezone.get_current_timezone())
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


def bucket_starts(chosen: Range, start: datetime, end: datetime) -> list[datetime]:
    step = timedelta(hours=1) if chosen.bucket == "hour" else timedelta(days=1)
    count = round((end - start) / step)
    return [start + step * i for i in range(count)]


def grouped(
    rows_of: RowFilter, bucket: str, start: datetime, end: datetime, now: datetime
) -> list[dict]:
    """Requests per (bucket, outcome, client, key prefix): settled hours from the hourly rollup,
    the last hour or so from the audit itself. A key may appear in both parts; readers sum.

    `rows_of(model, time_field)` narrows either table (to one client). The raw part reads only
    columns of the (time, outcome, client, key_prefix) index with COUNT(*), so PostgreSQL answers
    it from the index alone.
    """
    rolled = audit_rollup.roll_up(now, oldest=window(LONGEST, now)[0])
    boundary = min(max(rolled, start), end)
    past = (
        rows_of(AuditHourlyCount.objects.filter(hour__gte=start, hour__lt=boundary))
        .annotate(bucket=Trunc("hour", bucket))
        .values("bucket", "outcome", "client_id", "key_prefix")
        .annotate(n=Sum("requests"))
        .order_by()
    )
    recent = (
        rows_of(RequestAudit.objects.filter(time__gte=boundary, time__lt=end))
        .annotate(bucket=Trunc("time", bucket))
        .values("bucket", "outcome", "client_id", "key_prefix")
        .annotate(n=Count("*"))
        .order_by()
    )
    return [*past, *recent]


def client_names(groups: list[dict]) -> dict[int | None, str]:
    ids = {group["client_id"] for group in groups} - {None}
    names: dict[int | None, str] = dict(
        ApiClient.objects.filter(pk__in=ids).values_list("pk", "name")
    )
    return {None: NO_CLIENT, **names}


def counts_by_bucket(groups: list[dict]) -> dict[tuple[datetime, str], int]:
    """{(bucket start, outcome): requests}."""
    counts: dict[tuple[datetime, str], int] = {}
    for group in groups:
        key = (_normalized(group["bucket"]), group["outcome"])
        counts[key] = counts.get(key, 0) + group["n"]
    return counts


def layers(buckets: list[datetime], counts: dict[tuple[datetime, str], int]) -> list[svg.Series]:
    """The most frequent outcomes as layers, the rest folded into "other"; zeros filled in."""
    totals: dict[str, int] = {}
    for (_, outcome), n in counts.items():
        totals[outcome] = totals.get(outcome, 0) + n
    ranked = sorted(totals, key=lambda outcome: (-totals[outcome], outcome))
    shown = ranked[:MOST_SERIES]
    labels = shown + (["other"] if len(ranked) > MOST_SERIES else [])
    index = {bucket: i for i, bucket in enumerate(buckets)}
    values = {label: [0] * len(buckets) for label in labels}
    for (bucket, outcome), n in counts.items():
        i = index.get(bucket)
        if i is not None:
            values[outcome if outcome in shown else "other"][i] += n
    palette = svg.colours(labels)
    return [svg.Series(label, palette[label], values[label]) for label in labels]


def _normalized(bucket: datetime) -> datetime:
    # SQLite hands back naive datetimes in the current time zone; PostgreSQL aware ones.
    if timezone.is_naive(bucket):
        return timezone.make_aware(bucket)
    return bucket.astimezone(timezone.get_current_timezone())


def key_use(groups: list[dict], names: dict) -> list[tuple[str, int]]:
    """Requests per (client, key prefix), most used first."""
    uses: dict[tuple[str, str], int] = {}
    for group in groups:
        if group["key_prefix"]:
            key = (names.get(group["client_id"], NO_CLIENT), group["key_prefix"])
            uses[key] = uses.get(key, 0) + group["n"]
    ranked = sorted(uses.items(), key=lambda item: (-item[1], item[0]))[:MOST_KEYS]
    return [(f"{name}: {prefix}…", n) for (name, prefix), n in ranked]


def per_client(groups: list[dict], names: dict) -> list[dict]:
    """Requests and refusals per client in the range, most requests first."""
    rows: dict[int | None, dict] = {}
    for group in groups:
        client_id = group["client_id"]
        row = rows.setdefault(
            client_id,
            {
                "client_id": client_id,
                "client_name": names.get(client_id, NO_CLIENT),
                "requests": 0,
                "refusals": 0,
            },
        )
        row["requests"] += group["n"]
        row["refusals"] += group["n"] if group["outcome"] != OK else 0
    ranked = sorted(rows.values(), key=lambda row: (-row["requests"], row["client_name"]))
    return ranked[:MOST_CLIENTS]


def expiry_timeline(now: datetime) -> tuple[SafeString, list[svg.Mark]]:
    """The SVG timeline and its rows, soonest first, from a month back to a year ahead."""
    start, end = now - TIMELINE_BEFORE, now + TIMELINE_AFTER
    marks = sorted(expiry_marks(start, end), key=lambda mark: mark.when)
    chart = svg.timeline("expiry-chart", "Expiries", LANES, marks, start, end, now)
    return chart, marks


def expiry_marks(start: datetime, end: datetime) -> Iterator[svg.Mark]:
    """Every certificate, live key and CRL whose end falls inside [start, end].

    The range filters leave out rows without a date; the `is not None` tests say so to mypy.
    """
    identities = CertificateIdentity.objects.filter(not_after__range=(start, end))
    for identity in identities.select_related("client"):
        if identity.not_after is not None:
            yield svg.Mark(LANES[0], f"{identity.client.name}: {identity}", identity.not_after)
    keys = ApiKey.objects.filter(state__in=LIVE_KEY_STATES, expires_at__range=(start, end))
    for key in keys.select_related("client"):
        if key.expires_at is not None:
            yield svg.Mark(LANES[1], f"{key.client.name}: {key.prefix}…", key.expires_at)
    for anchor in TrustAnchor.objects.filter(not_after__range=(start, end)):
        if anchor.not_after is not None:
            yield svg.Mark(LANES[2], str(anchor), anchor.not_after)
    crls = RevocationList.objects.filter(next_update__range=(start, end)).select_related("issuer")
    for crl in crls:
        if crl.next_update is not None:
            yield svg.Mark(LANES[3], str(crl.issuer), crl.next_update)
    yield from _endpoint_certificates(start, end)


def _endpoint_certificates(start: datetime, end: datetime) -> Iterator[svg.Mark]:
    for logical_id, expires in directory().endpoint_certificate_expiries(start, end):
        yield svg.Mark(LANES[4], f"Endpoint/{logical_id}", expires)
