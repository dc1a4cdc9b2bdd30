"""API keys: issue, verify, rotate, retire and expire them; every change is a KeyEvent.

A key looks like `fdk_<prefix>_<secret>`: the prefix is public and finds the row, the secret is
32 random bytes. Only an HMAC of the whole key is stored, so the database never holds a usable key.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import certclients
from .models import ApiClient, ApiKey, KeyEvent

# Shared with log and audit redaction: anything matching this is treated as a key.
KEY_PATTERN = re.compile(r"fdk_[A-Za-z0-9]+_[A-Za-z0-9_-]{43}")

KEY_MARKER = "fdk"
PREFIX_LENGTH = 10
# No look-alike characters (0/o, 1/l/i), so a prefix read aloud or copied by hand stays right.
PREFIX_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
SECRET_BYTES = 32  # 256 bits; URL-safe base64 without padding gives exactly 43 characters
_PRESENTED_KEY = re.compile(
    rf"{KEY_MARKER}_(?P<prefix>[{PREFIX_ALPHABET}]{{{PREFIX_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{43}})"
)
# Compared against when the prefix is unknown, so an unknown prefix costs the same as a wrong key.
_DUMMY_HASH = "0" * 64

# Grace periods offered when rotating: the token used on the command line, label, duration.
GRACE_PERIODS = {
    "0": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
GRACE_CHOICES = [("0", "Immediately"), ("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days")]

SYSTEM_ACTOR = "system"
_STATE_FIELDS = ["state", "grace_until", "retired_at", "retired_reason"]


def command_actor() -> str:
    """How a management command run is named in the event log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid-{os.getuid()}"
    return f"command:{user}"


class KeyActionError(ValueError):
    """The requested action does not apply to the key in its current state."""


# --- Format and hashing -----------------------------------------------------------------------


def new_key_material() -> tuple[str, str]:
    """A fresh (prefix, plaintext key); the prefix's uniqueness is checked on insert."""
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return prefix, f"{KEY_MARKER}_{prefix}_{secret}"


def hash_key(plaintext: str) -> str:
    """The stored form: HMAC-SHA256 under the pepper, so a leaked table cannot be brute-forced."""
    pepper = settings.SECURITY_API_KEY_PEPPER.encode()
    return hmac.new(pepper, plaintext.encode(), hashlib.sha256).hexdigest()


def prefix_of(presented: str) -> str:
    """The prefix of a well-formed key, else ""."""
    match = _PRESENTED_KEY.fullmatch(presented or "")
    return match["prefix"] if match else ""


# --- Events -----------------------------------------------------------------------------------


def record_event(
    actor: str,
    action: str,
    client: ApiClient | None = None,
    key_prefix: str = "",
    reason: str = "",
    detail: str = "",
) -> KeyEvent:
    """One audit row; never pass a key here, only its prefix."""
    return KeyEvent.objects.create(
        actor=actor[:150],
        action=action,
        client=client,
        key_prefix=key_prefix,
        reason=reason[:500],
        detail=detail[:500],
    )


# --- Issue, rotate, retire, expire -------------------------------------------------------------


def issue_key(
    client: ApiClient, actor: str, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new active key for `client`: (ApiKey, plaintext). The plaintext is not kept anywhere."""
    with transaction.atomic():
        key, plaintext = _insert_new_key(client, expires_at)
        detail = f"expires {expires_at.isoformat()}" if expires_at else ""
        record_event(actor, "key-issued", client, key.prefix, detail=detail)
    return key, plaintext


def _insert_new_key(client: ApiClient, expires_at: datetime | None) -> tuple[ApiKey, str]:
    # A prefix collision is astronomically rare, but the unique index decides, not a prior check.
    for _ in range(5):
        prefix, plaintext = new_key_material()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    client=client,
                    prefix=prefix,
                    key_hash=hash_key(plaintext),
                    expires_at=expires_at,
                )
            return key, plaintext
        except IntegrityError:
            continue
    raise RuntimeError("could not find an unused key prefix")


def rotate_key(key: ApiKey, grace: timedelta, actor: str, reason: str = "") -> tuple[ApiKey, str]:
    """Issue a replacement; the old key keeps working for `grace`, then retires."""
    now = timezone.now()
    with transaction.atomic():
        old = ApiKey.objects.select_for_update().get(pk=key.pk)
        if old.state != ApiKey.ACTIVE or not _is_usable(old, now):
            raise KeyActionError(f"key {old.prefix} is not active ({old.state}); it cannot rotate")
        new, plaintext = _insert_new_key(old.client, old.expires_at)
        old.replaced_by = new
        if grace <= timedelta(0):
            _mark_retired(old, now, reason or "rotated without grace")
        else:
            old.state = ApiKey.ROTATING
            old.grace_until = now + grace
        old.save(update_fields=[*_STATE_FIELDS, "replaced_by"])
        forget_on_commit(old.prefix)
        record_event(actor, "key-issued", old.client, new.prefix, reason, f"replaces {old.prefix}")
        record_event(
            actor, "key-rotated", old.client, old.prefix, reason, _rotation_detail(old, new)
        )
    _copy_state(old, key)
    return new, plaintext


def _rotation_detail(old: ApiKey, new: ApiKey) -> str:
    if old.state == ApiKey.RETIRED:
        return f"replaced by {new.prefix}; retired immediately"
    until = cast(datetime, old.grace_until)  # rotate_key set it: the key is ROTATING
    return f"replaced by {new.prefix}; valid until {until.isoformat()}"


def retire_key(key: ApiKey, actor: str, reason: str) -> ApiKey:
    """Stop the key now (e.g. it leaked). A reason is required for the record."""
    reason = (reason or "").strip()
    if not reason:
        raise KeyActionError("a reason is required to retire a key")
    now = timezone.now()
    with transaction.atomic():
        current = ApiKey.objects.select_for_update().get(pk=key.pk)
        if current.state in (ApiKey.RETIRED, ApiKey.EXPIRED):
            raise KeyActionError(f"key {current.prefix} is already {current.state}")
        _mark_retired(current, now, reason)
        current.save(update_fields=["state", "retired_at", "retired_reason"])
        forget_on_commit(current.prefix)
        record_event(actor, "key-retired", current.client, current.prefix, reason)
    _copy_state(current, key)
    return key


def _mark_retired(key: ApiKey, now: datetime, reason: str) -> None:
    key.state = ApiKey.RETIRED
    key.retired_at = now
    key.retired_reason = reason[:500]


def _copy_state(source: ApiKey, target: ApiKey) -> None:
    """Keep the caller's instance in step with the row we just changed."""
    for name in ("state", "grace_until", "retired_at", "retired_reason", "replaced_by_id"):
        setattr(target, name, getattr(source, name))


def expire_keys(now: datetime | None = None, actor: str = SYSTEM_ACTOR) -> dict[str, int]:
    """Retire rotating keys past their grace and expire active keys past expires_at."""
    now = now or timezone.now()
    retired = _end_grace_periods(now, actor)
    expired = _expire_active_keys(now, actor)
    return {"retired": retired, "expired": expired}


def _locked_with_client() -> QuerySet[ApiKey]:
    # Lock only the key rows: the joined client rows are read, not changed.
    return ApiKey.objects.select_related("client").select_for_update(of=("self",))


def _end_grace_periods(now: datetime, actor: str) -> int:
    count = 0
    with transaction.atomic():
        due = _locked_with_client().filter(state=ApiKey.ROTATING, grace_until__lte=now)
        for key in due:
            _mark_retired(key, now, "rotation grace period ended")
            key.save(update_fields=["state", "retired_at", "retired_reason"])
            record_event(actor, "key-grace-ended", key.client, key.prefix)
            forget_on_commit(key.prefix)
            count += 1
    return count


def _expire_active_keys(now: datetime, actor: str) -> int:
    count = 0
    with transaction.atomic():
        due = _locked_with_client().filter(state=ApiKey.ACTIVE, expires_at__lte=now)
        for key in due:
            key.state = ApiKey.EXPIRED
            key.save(update_fields=["state"])
            record_event(actor, "key-expired", key.client, key.prefix)
            forget_on_commit(key.prefix)
            count += 1
    return count


# --- Verification ------------------------------------------------------------------------------


def verify_key(presented: str, now: datetime | None = None) -> ApiKey | None:
    """The key (with its client loaded) if `presented` is a currently valid key, else None."""
    now = now or timezone.now()
    prefix = prefix_of(presented)
    snapshot = _snapshot_for(prefix) if prefix else None
    expected = snapshot.key_hash if snapshot else _DUMMY_HASH
    # Always hash and compare, even for a malformed key or unknown prefix: equal work either way.
    matches = hmac.compare_digest(hash_key(presented or ""), expected)
    if not (matches and snapshot):
        return None
    key = snapshot.to_instance()
    if _is_usable(key, now):
        return key
    _settle_lapsed(key, now)
    return None


def current_state(key: ApiKey, now: datetime | None = None) -> str:
    """The state the key check acts on at `now`: dates decide, not a batch job, so a lapsed
    grace period or expiry counts before the stored state is settled."""
    now = now or timezone.now()
    if key.state == ApiKey.ROTATING and (key.grace_until is None or now >= key.grace_until):
        return ApiKey.RETIRED
    lapsed = key.expires_at is not None and now >= key.expires_at
    if key.state in (ApiKey.ACTIVE, ApiKey.ROTATING) and lapsed:
        return ApiKey.EXPIRED
    return key.state


def has_usable_key(client: ApiClient, now: datetime | None = None) -> bool:
    """Whether any of the client's keys would pass the API key check at `now`."""
    now = now or timezone.now()
    live = client.keys.filter(state__in=(ApiKey.ACTIVE, ApiKey.ROTATING))
    return any(_is_usable(key, now) for key in live)


def _is_usable(key: ApiKey, now: datetime) -> bool:
    """Active and unexpired, or rotating within grace and unexpired."""
    return current_state(key, now) in (ApiKey.ACTIVE, ApiKey.ROTATING)


def _settle_lapsed(key: ApiKey, now: datetime) -> None:
    """Write the state a lapsed deadline implies, once, whichever process sees it first."""
    if key.state == ApiKey.ROTATING and key.grace_until is not None and now >= key.grace_until:
        changed = ApiKey.objects.filter(pk=key.pk, state=ApiKey.ROTATING).update(
            state=ApiKey.RETIRED, retired_at=now, retired_reason="rotation grace period ended"
        )
        action = "key-grace-ended"
    elif key.state == ApiKey.ACTIVE and key.expires_at is not None and now >= key.expires_at:
        changed = ApiKey.objects.filter(pk=key.pk, state=ApiKey.ACTIVE).update(state=ApiKey.EXPIRED)
        action = "key-expired"
    else:
        return
    if changed:
        record_event(SYSTEM_ACTOR, action, key.client, key.prefix)
    forget(key.prefix)


# --- Per-process cache of key rows -------------------------------------------------------------

_KEY_FIELDS = [f.attname for f in ApiKey._meta.concrete_fields]
_CLIENT_FIELDS = [f.attname for f in ApiClient._meta.concrete_fields]
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class _Snapshot:
    """A key row and its client's row as read at `fetched`; turned into fresh instances per use."""

    key_values: tuple
    client_values: tuple
    fetched: float

    @property
    def key_hash(self) -> str:
        return self.key_values[_KEY_FIELDS.index("key_hash")]

    def to_instance(self) -> ApiKey:
        key = ApiKey.from_db("default", _KEY_FIELDS, self.key_values)
        key.client = ApiClient.from_db("default", _CLIENT_FIELDS, self.client_values)
        return key


_cache: dict[str, _Snapshot] = {}
_cache_lock = threading.Lock()


def _monotonic() -> float:
    return time.monotonic()


def _snapshot_for(prefix: str) -> _Snapshot | None:
    """The cached row if younger than SECURITY_CACHE_SECONDS, else a fresh read."""
    snapshot = _cache.get(prefix)
    if snapshot and _monotonic() - snapshot.fetched < settings.SECURITY_CACHE_SECONDS:
        return snapshot
    key = ApiKey.objects.select_related("client").filter(prefix=prefix).first()
    if key is None:
        # Unknown prefixes are not cached: a new key must work at once, and guesses cost memory.
        forget(prefix)
        return None
    snapshot = _Snapshot(
        key_values=tuple(getattr(key, name) for name in _KEY_FIELDS),
        client_values=tuple(getattr(key.client, name) for name in _CLIENT_FIELDS),
        fetched=_monotonic(),
    )
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[prefix] = snapshot
    return snapshot


def forget(prefix: str) -> None:
    """Drop one key from this process's cache (other processes catch up within the bound)."""
    with _cache_lock:
        _cache.pop(prefix, None)


def forget_on_commit(prefix: str) -> None:
    """Forget now and again at commit, so no request re-caches the row we are still changing."""
    forget(prefix)
    transaction.on_commit(partial(forget, prefix))


def forget_client(client_id: int) -> None:
    """Drop every cached key and certificate answer of a client, e.g. after it was suspended."""
    certclients.forget_client(client_id)
    client_field = _CLIENT_FIELDS.index("id")
    with _cache_lock:
        stale = [p for p, s in _cache.items() if s.client_values[client_field] == client_id]
        for prefix in stale:
            del _cache[prefix]


def clear_cache() -> None:
    """Forget cached rows and last-use marks of this process (tests, and after a pepper change)."""
    certclients.clear()
    with _cache_lock:
        _cache.clear()
    with _last_use_lock:
        _last_use_written.clear()


# --- Last use ----------------------------------------------------------------------------------

_last_use_written: dict[int, datetime] = {}
_last_use_lock = threading.Lock()


def record_use(key: ApiKey, ip: str, now: datetime | None = None) -> bool:
    """Note a use; writes to the database at most once per interval per key. True if it wrote."""
    now = now or timezone.now()
    interval = timedelta(seconds=settings.SECURITY_KEY_LAST_USED_INTERVAL)
    with _last_use_lock:
        last = _last_use_written.get(key.pk)
        if last is not None and now - last < interval:
            return False
        _last_use_written[key.pk] = now
    # The condition makes concurrent processes write the row at most once per interval too.
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - interval)
    ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now, last_used_ip=_ip_or_none(ip))
    return True


def _ip_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
