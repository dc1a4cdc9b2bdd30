"""Where per-client limit state lives: Redis, shared by every worker, or this process alone.

Two primitives, each one atomic step so workers racing on the same client cannot both slip
through: a rate (a generic cell rate algorithm: a sustained rate plus a burst, as nginx's
`limit_req ... burst= nodelay`) and a count of requests in flight, each slot with a deadline so a
worker killed mid-request gives its slots back by itself.

Redis runs both as Lua scripts against its own clock, so workers on hosts with drifting clocks
agree. redis-py is the maintained client; rate limiting libraries for Python offer windows but no
in-flight semaphore, and the two scripts below are all the algorithm there is.
"""

from __future__ import annotations

import threading
import time
import uuid
from functools import lru_cache
from typing import Protocol

from django.conf import settings

# Returns 0 when allowed, else the milliseconds until the request would be.
_RATE_LUA = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local counted = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat + math.min(interval * cost, tolerance - interval * counted) - tolerance - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tat + interval * cost, 'PX', tat + interval * cost - now)
return 0
"""

# Returns 1 with the slot taken, 0 when the client already has `limit` live slots.
_ACQUIRE_LUA = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


class LimitStore(Protocol):
    def take(self, key: str, interval_ms: int, burst: int, cost: int = 1, counted: int = 0) -> int:
        """Count `cost` requests against the rate; 0 if allowed, else milliseconds to wait.

        A cost above the burst is allowed once the client's allowance is whole but for the
        `counted` requests of the same call already taken, and the client then waits as if it
        had sent that many requests one by one.
        """

    def acquire(self, key: str, limit: int, ttl_ms: int) -> str | None:
        """A slot token if fewer than `limit` are in flight, else None."""

    def release(self, key: str, token: str) -> None:
        """Give a slot back (a no-op once it has expired)."""


class RedisLimitStore:
    """State in Redis: limits hold across every worker and host sharing it."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        # Short timeouts: a hung Redis must not hold the worker it was meant to protect.
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix
        self._rate = self.client.register_script(_RATE_LUA)
        self._acquire = self.client.register_script(_ACQUIRE_LUA)

    def take(self, key: str, interval_ms: int, burst: int, cost: int = 1, counted: int = 0) -> int:
        keys = [f"{self.prefix}rate:{key}"]
        args = [interval_ms, interval_ms * burst, cost, counted]
        return int(self._rate(keys=keys, args=args))

    def acquire(self, key: str, limit: int, ttl_ms: int) -> str | None:
        token = uuid.uuid4().hex
        keys = [f"{self.prefix}inflight:{key}"]
        return token if self._acquire(keys=keys, args=[token, limit, ttl_ms]) else None

    def release(self, key: str, token: str) -> None:
        self.client.zrem(f"{self.prefix}inflight:{key}", token)


class LocalLimitStore:
    """State in this process: the embedded default, exact for a single worker."""

    # Past this many tracked clients, entries with nothing left to remember are dropped.
    PRUNE_AT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}

    def take(self, key: str, interval_ms: int, burst: int, cost: int = 1, counted: int = 0) -> int:
        now = time.monotonic() * 1000
        tolerance = interval_ms * burst
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            needed = min(interval_ms * cost, tolerance - interval_ms * counted)
            wait = tat + needed - tolerance - now
            if wait > 0:
                return int(wait) + 1
            self._tat[key] = tat + interval_ms * cost
            self._prune(now)
        return 0

    def acquire(self, key: str, limit: int, ttl_ms: int) -> str | None:
        now = time.monotonic() * 1000
        with self._lock:
            live = {t: end for t, end in self._slots.get(key, {}).items() if end > now}
            if len(live) >= limit:
                self._slots[key] = live
                return None
            token = uuid.uuid4().hex
            live[token] = now + ttl_ms
            self._slots[key] = live
        return token

    def release(self, key: str, token: str) -> None:
        with self._lock:
            slots = self._slots.get(key, {})
            slots.pop(token, None)
            if not slots:
                self._slots.pop(key, None)

    def _prune(self, now: float) -> None:
        if len(self._tat) > self.PRUNE_AT:
            self._tat = {k: tat for k, tat in self._tat.items() if tat > now}


@lru_cache(maxsize=4)
def _store_for(url: str, prefix: str) -> LimitStore:
    return RedisLimitStore(url, prefix) if url else LocalLimitStore()


def store() -> LimitStore:
    """The store the settings name: Redis when RATE_LIMIT_REDIS_URL is set, else in-process."""
    return _store_for(settings.RATE_LIMIT_REDIS_URL, settings.RATE_LIMIT_KEY_PREFIX)


def reset() -> None:
    """Forget every store (and the in-process state): settings changed, or a test starts."""
    _store_for.cache_clear()
