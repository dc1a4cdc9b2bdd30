"""Rolls the request audit up into hourly counts, so charts over months read thousands of rows.

An hour is rolled up once it has settled: audit rows carry the time a request started and are
written when it ends, and gunicorn kills a worker after 30 s, so an hour that ended SETTLE ago
gets no more rows. Hours further back than the longest chart range are never rolled up. The
state row is locked (and its boundary moved by compare-and-set) while rolling up, so two viewers
never count an hour twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import Trunc
from django.utils import timezone

from .models import AuditHourlyCount, AuditRollupState, RequestAudit

SETTLE = timedelta(minutes=5)
# Hours rolled up per call: a page view catching up after a long pause (or the first one after
# deploy) does a bounded amount of work; the charts read the raw audit past the boundary, and
# `manage.py rollup_audit` (cron) catches up in full.
MAX_STEP = timedelta(hours=24)
INSERT_BATCH = 5000


def settled_until(now: datetime) -> datetime:
    """The start of the first hour that may still get audit rows."""
    settled = (now - SETTLE).astimezone(timezone.get_current_timezone())
    return settled.replace(minute=0, second=0, microsecond=0)


def roll_up(now: datetime, oldest: datetime, step: timedelta = MAX_STEP) -> datetime:
    """Roll up settled hours not rolled up yet, at most `step` of them and none before `oldest`.

    Returns the new boundary: every hour before it is in the rollup.
    """
    with transaction.atomic():
        state = _locked_state()
        since = max(state.rolled_until or oldest, oldest)
        until = min(settled_until(now), since + step)
        if since >= until:
            return state.rolled_until or since
        # Compare-and-set before counting: where SELECT FOR UPDATE locks nothing (SQLite), a
        # concurrent roll-up that moved the boundary first makes this one stand down.
        claimed = AuditRollupState.objects.filter(pk=1, rolled_until=state.rolled_until).update(
            rolled_until=until
        )
        if not claimed:
            return AuditRollupState.objects.get(pk=1).rolled_until or since
        counts = (
            RequestAudit.objects.filter(time__gte=since, time__lt=until)
            .annotate(hour=Trunc("time", "hour"))
            .values("hour", "outcome", "client_id", "key_prefix")
            .annotate(n=Count("*"))
            .order_by()
        )
        AuditHourlyCount.objects.bulk_create(
            (
                AuditHourlyCount(
                    hour=_aware(row["hour"]),
                    outcome=row["outcome"],
                    client_id=row["client_id"],
                    key_prefix=row["key_prefix"],
                    requests=row["n"],
                )
                for row in counts.iterator()
            ),
            batch_size=INSERT_BATCH,
        )
        # Nothing reads hours older than the longest range: the rollup stays bounded.
        AuditHourlyCount.objects.filter(hour__lt=oldest).delete()
    return until


def _locked_state() -> AuditRollupState:
    state = AuditRollupState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        AuditRollupState.objects.get_or_create(pk=1)
        state = AuditRollupState.objects.select_for_update().get(pk=1)
    return state


def _aware(hour: datetime) -> datetime:
    # SQLite hands back naive datetimes in the current time zone; PostgreSQL aware ones.
    return timezone.make_aware(hour) if timezone.is_naive(hour) else hour
