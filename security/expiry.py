"""What is about to expire, what has gone unused and what is due for renewal: pure computations.

Every function takes plain values and `now`; the dashboard view reads the rows and renders.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .trust.certificates import CertificateError, load_pem_certificate

EXPIRY_WINDOW = timedelta(days=90)
UNUSED_AFTER = timedelta(days=90)
# Trust community policy: certificates live 18 months and are renewed after 12.
LIFETIME_MONTHS = 18
RENEW_AFTER_MONTHS = 12

FRESH, STALE, NEVER_FETCHED = "fresh", "stale", "never fetched"


@dataclass(frozen=True)
class Expiring:
    """One item that expires (or has expired) inside the window."""

    kind: str
    label: str
    expires: datetime
    days_left: int


@dataclass(frozen=True)
class RenewalDue:
    """A certificate older than the renewal age; `estimated` when its start was not on file."""

    kind: str
    label: str
    not_before: datetime
    age_days: int
    estimated: bool


def days_left(expires: datetime, now: datetime) -> int:
    """Whole days until `expires`; negative once past."""
    return (expires - now).days


def expiring(
    kind: str,
    label: str,
    expires: datetime | None,
    now: datetime,
    window: timedelta = EXPIRY_WINDOW,
) -> Expiring | None:
    """An Expiring entry when `expires` is already past or falls within `window` of now."""
    if expires is None or expires > now + window:
        return None
    return Expiring(kind, label, expires, days_left(expires, now))


def soonest_first(items: Iterable[Expiring | None]) -> list[Expiring]:
    return sorted((item for item in items if item is not None), key=lambda item: item.expires)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day (Feb 29 → 28)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def renewal_due(
    kind: str,
    label: str,
    now: datetime,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> RenewalDue | None:
    """Flag a certificate past RENEW_AFTER_MONTHS of age.

    Without its start date, the start is estimated from the policy lifetime before `not_after`.
    """
    estimated = not_before is None
    if not_before is None:
        if not_after is None:
            return None
        not_before = add_months(not_after, -LIFETIME_MONTHS)
    if now < add_months(not_before, RENEW_AFTER_MONTHS):
        return None
    return RenewalDue(kind, label, not_before, (now - not_before).days, estimated)


def certificate_not_before(pem: str) -> datetime | None:
    """The start of validity of a PEM certificate; None when absent or unreadable."""
    if not pem or "BEGIN CERTIFICATE" not in pem:
        return None
    try:
        return load_pem_certificate(pem).not_valid_before_utc
    except CertificateError:
        return None


def key_unused(
    last_used_at: datetime | None, created: datetime, now: datetime, after: timedelta = UNUSED_AFTER
) -> bool:
    """Unused for `after`: last used before then, or never used and created before then."""
    return (last_used_at or created) < now - after


def crl_state(has_crl: bool, next_update: datetime | None, now: datetime) -> str:
    """fresh, stale (past nextUpdate, as the certificate check sees it) or never fetched."""
    if not has_crl:
        return NEVER_FETCHED
    if next_update is None or now >= next_update:
        return STALE
    return FRESH
