"""The pure expiry computations behind the trust and expiry dashboard."""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from security import expiry

from .pki import make_leaf, make_root

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


# ---------------------------------------------------------------------------- expiring


@pytest.mark.parametrize(
    ("expires", "expected_days"),
    [(NOW + 89 * DAY, 89), (NOW + 90 * DAY, 90), (NOW - 3 * DAY, -3), (NOW, 0)],
)
def test_items_inside_the_window_or_already_expired_are_listed(expires, expected_days):
    item = expiry.expiring("API key", "k", expires, NOW)
    assert item is not None and item.days_left == expected_days


@pytest.mark.parametrize("expires", [NOW + 91 * DAY, None])
def test_items_beyond_the_window_or_without_expiry_are_not(expires):
    assert expiry.expiring("API key", "k", expires, NOW) is None


def test_soonest_first_drops_nones_and_sorts():
    late = expiry.expiring("a", "late", NOW + 60 * DAY, NOW)
    early = expiry.expiring("a", "early", NOW - DAY, NOW)
    assert [i.label for i in expiry.soonest_first([late, None, early])] == ["early", "late"]


# ---------------------------------------------------------------------------- unused keys


def test_a_key_last_used_over_90_days_ago_is_unused():
    assert expiry.key_unused(NOW - 91 * DAY, NOW - 400 * DAY, NOW)
    assert not expiry.key_unused(NOW - 89 * DAY, NOW - 400 * DAY, NOW)


def test_a_never_used_key_counts_from_its_creation():
    assert expiry.key_unused(None, NOW - 91 * DAY, NOW)
    assert not expiry.key_unused(None, NOW - 10 * DAY, NOW)


# ---------------------------------------------------------------------------- CRL state


def test_crl_states():
    assert expiry.crl_state(True, NOW + DAY, NOW) == expiry.FRESH
    assert expiry.crl_state(True, NOW - DAY, NOW) == expiry.STALE
    assert expiry.crl_state(True, NOW, NOW) == expiry.STALE, "nextUpdate reached is stale"
    assert expiry.crl_state(True, None, NOW) == expiry.STALE
    assert expiry.crl_state(False, NOW + DAY, NOW) == expiry.NEVER_FETCHED


# ---------------------------------------------------------------------------- renewal age


def test_add_months_clamps_to_the_end_of_short_months():
    assert expiry.add_months(datetime(2024, 2, 29, tzinfo=UTC), 12) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert expiry.add_months(datetime(2025, 1, 31, tzinfo=UTC), 1) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert expiry.add_months(datetime(2025, 3, 5, tzinfo=UTC), -18) == datetime(
        2023, 9, 5, tzinfo=UTC
    )


def test_a_certificate_past_twelve_months_is_due_for_renewal():
    due = expiry.renewal_due("Trust anchor", "CA", NOW, not_before=NOW - 366 * DAY)
    assert due is not None and due.age_days == 366 and not due.estimated
    assert expiry.renewal_due("Trust anchor", "CA", NOW, not_before=NOW - 360 * DAY) is None


def test_without_a_start_date_the_age_is_estimated_from_the_policy_lifetime():
    # 18-month certificate with under six months left: issued over twelve months ago.
    due = expiry.renewal_due("Client certificate", "c", NOW, not_after=NOW + 150 * DAY)
    assert due is not None and due.estimated
    assert expiry.renewal_due("Client certificate", "c", NOW, not_after=NOW + 200 * DAY) is None
    assert expiry.renewal_due("Client certificate", "c", NOW) is None


def test_the_start_date_is_read_from_a_pem_certificate():
    not_before = datetime(2025, 3, 1, tzinfo=UTC)
    leaf = make_leaf(make_root("Expiry Root"), "leaf", not_before=not_before)
    pem = leaf.cert.public_bytes(serialization.Encoding.PEM).decode()
    assert expiry.certificate_not_before(pem) == not_before


@pytest.mark.parametrize("pem", ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_an_unreadable_pem_gives_no_start_date(pem):
    assert expiry.certificate_not_before(pem) is None
