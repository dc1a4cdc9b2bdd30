"""API key service: format, storage, verification, state transitions, cache bound, last use."""

import re
import string
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from security import keys
from security.keys import (
    GRACE_CHOICES,
    GRACE_PERIODS,
    KEY_PATTERN,
    KeyActionError,
    expire_keys,
    hash_key,
    issue_key,
    record_use,
    retire_key,
    rotate_key,
    verify_key,
)
from security.models import ApiKey, KeyEvent

from .factories import ApiClientFactory, ApiKeyFactory

ACTOR = "test:alice"
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _fresh_process_state():
    keys.clear_cache()
    yield
    keys.clear_cache()


@pytest.fixture
def client_row(db):
    return ApiClientFactory()


# --- Shape and entropy --------------------------------------------------------------------------


def test_key_has_the_documented_shape(client_row):
    key, plaintext = issue_key(client_row, ACTOR)
    assert KEY_PATTERN.fullmatch(plaintext)
    marker, prefix, secret = plaintext.split("_", 2)
    assert marker == "fdk"
    assert prefix == key.prefix
    assert len(prefix) == 10
    assert set(prefix) <= set(keys.PREFIX_ALPHABET)
    assert len(secret) == 43
    assert set(secret) <= set(string.ascii_letters + string.digits + "-_")


def test_keys_are_unique_and_use_the_whole_alphabet():
    made = [keys.new_key_material() for _ in range(2000)]
    prefixes = {prefix for prefix, _ in made}
    plaintexts = {plaintext for _, plaintext in made}
    assert len(prefixes) == len(plaintexts) == 2000
    secret_chars = set("".join(p.split("_", 2)[2] for p in plaintexts))
    # 64 symbols x 6 bits x 43 characters = 258 bits; a weaker source would miss symbols here.
    assert len(secret_chars) == 64
    assert {c for p in prefixes for c in p} == set(keys.PREFIX_ALPHABET)


def test_secret_is_256_bits_from_secrets(monkeypatch):
    calls = []
    real = keys.secrets.token_urlsafe
    monkeypatch.setattr(keys.secrets, "token_urlsafe", lambda n: calls.append(n) or real(n))
    keys.new_key_material()
    assert calls == [32]


def test_key_pattern_finds_keys_inside_text(client_row):
    _, plaintext = issue_key(client_row, ACTOR)
    line = f"GET /fhir/Practitioner?apikey={plaintext}&name=x"
    assert KEY_PATTERN.sub("[key]", line) == "GET /fhir/Practitioner?apikey=[key]&name=x"


# --- Storage ------------------------------------------------------------------------------------


def test_only_a_keyed_hash_is_stored(client_row, settings):
    key, plaintext = issue_key(client_row, ACTOR)
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    secret = plaintext.split("_", 2)[2]
    for value in row.values():
        assert plaintext not in str(value)
        assert secret not in str(value)
    assert row["key_hash"] == hash_key(plaintext)
    assert re.fullmatch(r"[0-9a-f]{64}", row["key_hash"])
    settings.SECURITY_API_KEY_PEPPER = "another pepper"
    assert hash_key(plaintext) != row["key_hash"]


def test_plaintext_is_in_no_key_event(client_row):
    key, plaintext = issue_key(client_row, ACTOR)
    new, new_plaintext = rotate_key(key, HOUR, ACTOR, "scheduled")
    retire_key(new, ACTOR, "compromised")
    secrets_ = [
        plaintext,
        new_plaintext,
        plaintext.split("_", 2)[2],
        new_plaintext.split("_", 2)[2],
    ]
    for event in KeyEvent.objects.values():
        for value in event.values():
            assert not any(s in str(value) for s in secrets_)


# --- Verification -------------------------------------------------------------------------------


def test_issued_key_verifies(client_row):
    key, plaintext = issue_key(client_row, ACTOR)
    verified = verify_key(plaintext)
    assert verified.pk == key.pk
    assert verified.client.name == client_row.name


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # wrong secret, right prefix
        lambda k: k[:-1],  # too short
        lambda k: k + "A",  # too long
        lambda k: k.replace("fdk_", "xyz_"),
        lambda k: "",
        lambda k: k.upper(),
    ],
)
def test_wrong_keys_do_not_verify(client_row, mangle):
    _, plaintext = issue_key(client_row, ACTOR)
    assert verify_key(mangle(plaintext)) is None


def test_unknown_prefix_still_does_a_constant_time_compare(db):
    _, unknown = keys.new_key_material()
    with mock.patch.object(keys.hmac, "compare_digest", return_value=False) as compare:
        assert verify_key(unknown) is None
        assert verify_key("not even a key") is None
    assert compare.call_count == 2


def test_known_prefix_is_compared_with_compare_digest(client_row):
    key, plaintext = issue_key(client_row, ACTOR)
    with mock.patch.object(keys.hmac, "compare_digest", wraps=keys.hmac.compare_digest) as cmp:
        assert verify_key(plaintext) is not None
    cmp.assert_called_once_with(hash_key(plaintext), key.key_hash)


def test_any_other_clients_key_hash_does_not_help(db):
    # Same prefix cannot be reused, but a key row with a foreign hash must not verify.
    a = ApiKeyFactory()
    b = ApiKeyFactory()
    forged = f"fdk_{a.prefix}_{b.plaintext.split('_', 2)[2]}"
    assert verify_key(forged) is None


# --- States and deadlines -----------------------------------------------------------------------


def test_active_key_stops_at_its_expiry(client_row):
    now = timezone.now()
    key, plaintext = issue_key(client_row, ACTOR, expires_at=now + HOUR)
    assert verify_key(plaintext, now=now + HOUR - timedelta(seconds=1)) is not None
    assert verify_key(plaintext, now=now + HOUR) is None
    key.refresh_from_db()
    assert key.state == ApiKey.EXPIRED  # settled lazily by the failed verification
    assert KeyEvent.objects.filter(action="key-expired", key_prefix=key.prefix).count() == 1


def test_rotation_grace_keeps_the_old_key_until_the_deadline(client_row):
    old, old_plaintext = issue_key(client_row, ACTOR)
    new, new_plaintext = rotate_key(old, timedelta(hours=24), ACTOR, "yearly rotation")
    old.refresh_from_db()
    assert old.state == ApiKey.ROTATING
    assert old.replaced_by_id == new.pk
    assert new.client_id == client_row.pk
    deadline = old.grace_until
    assert timezone.now() + timedelta(hours=23) < deadline <= timezone.now() + timedelta(hours=24)

    assert verify_key(old_plaintext, now=deadline - timedelta(seconds=1)).pk == old.pk
    assert verify_key(new_plaintext, now=deadline - timedelta(seconds=1)).pk == new.pk
    assert verify_key(old_plaintext, now=deadline) is None
    assert verify_key(new_plaintext, now=deadline).pk == new.pk
    old.refresh_from_db()
    assert old.state == ApiKey.RETIRED  # lazily marked, no batch job needed


def test_rotation_without_grace_retires_at_once(client_row):
    old, old_plaintext = issue_key(client_row, ACTOR)
    assert verify_key(old_plaintext) is not None  # now cached in this process
    _, new_plaintext = rotate_key(old, GRACE_PERIODS["0"], ACTOR, "leaked in a ticket")
    assert verify_key(old_plaintext) is None
    assert verify_key(new_plaintext) is not None
    old.refresh_from_db()
    assert (old.state, old.retired_reason) == (ApiKey.RETIRED, "leaked in a ticket")


def test_rotated_key_cannot_rotate_again(client_row):
    old, _ = issue_key(client_row, ACTOR)
    rotate_key(old, HOUR, ACTOR, "r")
    with pytest.raises(KeyActionError):
        rotate_key(old, HOUR, ACTOR, "again")


def test_replacement_keeps_the_old_expiry(client_row):
    expires = timezone.now() + timedelta(days=30)
    old, _ = issue_key(client_row, ACTOR, expires_at=expires)
    new, _ = rotate_key(old, HOUR, ACTOR, "r")
    assert new.expires_at == expires


def test_retire_is_immediate_even_when_cached(client_row):
    key, plaintext = issue_key(client_row, ACTOR)
    assert verify_key(plaintext) is not None
    retire_key(key, ACTOR, "compromised")
    assert verify_key(plaintext) is None
    key.refresh_from_db()
    assert key.state == ApiKey.RETIRED
    assert key.retired_reason == "compromised"
    assert key.retired_at is not None


def test_rotating_key_can_be_retired_early(client_row):
    old, old_plaintext = issue_key(client_row, ACTOR)
    rotate_key(old, timedelta(days=7), ACTOR, "r")
    retire_key(old, ACTOR, "the client switched already")
    assert verify_key(old_plaintext) is None


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_retire_needs_a_reason(client_row, reason):
    key, plaintext = issue_key(client_row, ACTOR)
    with pytest.raises(KeyActionError):
        retire_key(key, ACTOR, reason)
    assert verify_key(plaintext) is not None
    assert not KeyEvent.objects.filter(action="key-retired").exists()


def test_retired_key_cannot_be_retired_or_rotated(client_row):
    key, _ = issue_key(client_row, ACTOR)
    retire_key(key, ACTOR, "compromised")
    with pytest.raises(KeyActionError):
        retire_key(key, ACTOR, "again")
    with pytest.raises(KeyActionError):
        rotate_key(key, HOUR, ACTOR, "r")


def test_expire_keys_settles_every_lapsed_key(db):
    now = timezone.now()
    rotating_due = ApiKeyFactory(state=ApiKey.ROTATING, grace_until=now - HOUR)
    rotating_later = ApiKeyFactory(state=ApiKey.ROTATING, grace_until=now + HOUR)
    active_due = ApiKeyFactory(expires_at=now - HOUR)
    active_later = ApiKeyFactory(expires_at=now + HOUR)
    active_forever = ApiKeyFactory()

    assert expire_keys(now) == {"retired": 1, "expired": 1}

    states = dict(ApiKey.objects.values_list("pk", "state"))
    assert states == {
        rotating_due.pk: ApiKey.RETIRED,
        rotating_later.pk: ApiKey.ROTATING,
        active_due.pk: ApiKey.EXPIRED,
        active_later.pk: ApiKey.ACTIVE,
        active_forever.pk: ApiKey.ACTIVE,
    }
    assert expire_keys(now) == {"retired": 0, "expired": 0}
    actions = set(KeyEvent.objects.values_list("action", "key_prefix"))
    assert actions == {("key-grace-ended", rotating_due.prefix), ("key-expired", active_due.prefix)}


def test_verification_does_not_wait_for_expire_keys(db):
    now = timezone.now()
    lapsed = ApiKeyFactory(state=ApiKey.ROTATING, grace_until=now - timedelta(seconds=1))
    expired = ApiKeyFactory(expires_at=now - timedelta(seconds=1))
    assert verify_key(lapsed.plaintext) is None
    assert verify_key(expired.plaintext) is None


@pytest.mark.parametrize("state", [ApiKey.RETIRED, ApiKey.EXPIRED])
def test_ended_states_never_verify(db, state):
    key = ApiKeyFactory(state=state, expires_at=timezone.now() + HOUR)
    assert verify_key(key.plaintext) is None


def test_rotating_key_without_deadline_fails_closed(db):
    key = ApiKeyFactory(state=ApiKey.ROTATING, grace_until=None)
    assert verify_key(key.plaintext) is None


def test_time_is_read_from_django_timezone(client_row, monkeypatch):
    old, old_plaintext = issue_key(client_row, ACTOR)
    rotate_key(old, HOUR, ACTOR, "r")
    later = timezone.now() + HOUR + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert verify_key(old_plaintext) is None


# --- Events -------------------------------------------------------------------------------------


def test_every_action_is_recorded_with_actor_prefix_and_reason(client_row):
    key, _ = issue_key(client_row, "admin:bob")
    new, _ = rotate_key(key, HOUR, "admin:carol", "annual rotation")
    retire_key(new, "command:dave", "compromised")
    events = list(
        KeyEvent.objects.order_by("pk").values_list("actor", "action", "key_prefix", "reason")
    )
    assert events == [
        ("admin:bob", "key-issued", key.prefix, ""),
        ("admin:carol", "key-issued", new.prefix, "annual rotation"),
        ("admin:carol", "key-rotated", key.prefix, "annual rotation"),
        ("command:dave", "key-retired", new.prefix, "compromised"),
    ]
    assert set(KeyEvent.objects.values_list("client_id", flat=True)) == {client_row.pk}


# --- Cache bound --------------------------------------------------------------------------------


def _retire_elsewhere(key):
    """What another server process does: change the row without touching this process's cache."""
    ApiKey.objects.filter(pk=key.pk).update(state=ApiKey.RETIRED, retired_reason="compromised")


def test_cache_serves_until_the_bound_then_rereads(client_row, settings, monkeypatch):
    settings.SECURITY_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(keys, "_monotonic", lambda: clock[0])
    key, plaintext = issue_key(client_row, ACTOR)
    assert verify_key(plaintext) is not None
    _retire_elsewhere(key)
    clock[0] += 4.9
    assert verify_key(plaintext) is not None  # still the cached row: proves there is a cache
    clock[0] += 0.1
    assert verify_key(plaintext) is None


def test_retired_elsewhere_fails_within_cache_seconds_in_real_time(client_row, settings):
    settings.SECURITY_CACHE_SECONDS = 1
    key, plaintext = issue_key(client_row, ACTOR)
    assert verify_key(plaintext) is not None
    _retire_elsewhere(key)
    time.sleep(1.05)
    assert verify_key(plaintext) is None


def test_cached_verification_makes_no_query(client_row, settings, django_assert_num_queries):
    settings.SECURITY_CACHE_SECONDS = 60
    _, plaintext = issue_key(client_row, ACTOR)
    verify_key(plaintext)
    with django_assert_num_queries(0):
        assert verify_key(plaintext) is not None


def test_cache_disabled_with_zero_seconds(client_row, settings):
    settings.SECURITY_CACHE_SECONDS = 0
    key, plaintext = issue_key(client_row, ACTOR)
    assert verify_key(plaintext) is not None
    _retire_elsewhere(key)
    assert verify_key(plaintext) is None


def test_cached_instances_are_not_shared(client_row):
    _, plaintext = issue_key(client_row, ACTOR)
    first = verify_key(plaintext)
    first.state = ApiKey.RETIRED
    first.client.status = "suspended"
    second = verify_key(plaintext)
    assert second.state == ApiKey.ACTIVE
    assert second.client.status == "active"


# --- Last use -----------------------------------------------------------------------------------


def _updates(queries):
    return [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def test_last_use_is_written_at_most_once_per_interval(client_row, settings):
    settings.SECURITY_KEY_LAST_USED_INTERVAL = 60
    key, _ = issue_key(client_row, ACTOR)
    start = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        for second in range(0, 59, 2):
            record_use(key, "192.0.2.10", now=start + timedelta(seconds=second))
    assert len(_updates(queries.captured_queries)) == 1
    assert len(queries.captured_queries) == 1
    key.refresh_from_db()
    assert (key.last_used_at, key.last_used_ip) == (start, "192.0.2.10")

    with CaptureQueriesContext(connection) as queries:
        record_use(key, "192.0.2.11", now=start + timedelta(seconds=61))
    assert len(_updates(queries.captured_queries)) == 1
    key.refresh_from_db()
    assert (key.last_used_at, key.last_used_ip) == (start + timedelta(seconds=61), "192.0.2.11")


def test_last_use_update_is_conditional_across_processes(client_row, settings):
    settings.SECURITY_KEY_LAST_USED_INTERVAL = 60
    key, _ = issue_key(client_row, ACTOR)
    start = timezone.now()
    record_use(key, "192.0.2.10", now=start)
    keys.clear_cache()  # a second process: no memory of the first write
    record_use(key, "192.0.2.99", now=start + timedelta(seconds=10))
    key.refresh_from_db()
    assert (key.last_used_at, key.last_used_ip) == (start, "192.0.2.10")


def test_last_use_ignores_an_address_that_is_not_an_ip(client_row):
    key, _ = issue_key(client_row, ACTOR)
    record_use(key, "not-an-ip")
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert key.last_used_ip is None


def test_grace_choices_cover_the_admin_options():
    assert [value for value, _ in GRACE_CHOICES] == list(GRACE_PERIODS)
    assert {
        "0": timedelta(0),
        "1h": timedelta(hours=1),
        "24h": timedelta(hours=24),
        "7d": timedelta(days=7),
    } == GRACE_PERIODS
