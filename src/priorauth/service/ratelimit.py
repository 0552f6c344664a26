"""Token-bucket rate limits kept in memory, the database or Redis, and a tally of refusals.

Every limiter answers `take(key)`: None when the request may go on, else the seconds to wait.
The database and Redis backends keep one bucket per key for every worker process, so
`--workers N` does not multiply the budget. Each takes an injected clock (seconds).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from priorauth.store.models import RateBucketRow

Clock = Callable[[], float]


def _refill(
    tokens: float, last: float, now: float, rate: float, burst: float
) -> tuple[float, float | None]:
    """(tokens left, None) when one is taken; (tokens, seconds to wait) when none is left."""
    if now > last:  # clocks of two processes may disagree a little: never refill backwards
        tokens = min(burst, tokens + (now - last) * rate)
    if tokens >= 1:
        return tokens - 1, None
    return tokens, ((1 - tokens) / rate if rate > 0 else 60.0)


class RateLimiter:
    """In memory, one process: `burst` requests at once, refilled at `per_minute`."""

    blocking = False  # take() does no I/O: callable from the event loop

    def __init__(self, per_minute: int, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens, wait = _refill(tokens, last, now, self.rate, self.burst)
            self._buckets[key] = (tokens, max(now, last))
            if len(self._buckets) > 100_000:  # many addresses: forget the full buckets
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst}
            return wait


class DatabaseRateLimiter(RateLimiter):
    """One bucket per key in the `rate_buckets` table, updated under a row lock."""

    blocking = True

    def __init__(
        self, engine: Engine, per_minute: int, burst: int, clock: Clock = time.time
    ) -> None:
        super().__init__(per_minute, burst, clock)
        self.sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        self._takes = 0

    def take(self, key: str) -> float | None:
        now = self.clock()
        for attempt in range(3):
            try:
                return self._take(key[:200], now)
            except IntegrityError:  # two workers created the same bucket at once
                if attempt == 2:
                    raise
        return None  # pragma: no cover

    def _take(self, key: str, now: float) -> float | None:
        with self.sessions() as s:
            row = s.get(RateBucketRow, key, with_for_update=True)
            if row is None:
                row = RateBucketRow(key=key, tokens=self.burst, updated=now)
                s.add(row)
                s.flush()  # IntegrityError here if another worker got there first
            tokens, wait = _refill(row.tokens, row.updated, now, self.rate, self.burst)
            row.tokens, row.updated = tokens, max(now, row.updated)
            self._takes += 1
            if self._takes % 1000 == 0:  # forget buckets idle long enough to be full again
                idle = self.burst / self.rate if self.rate > 0 else 3600.0
                s.execute(delete(RateBucketRow).where(RateBucketRow.updated < now - idle - 60))
            s.commit()
            return wait


# One atomic step in Redis: refill, take, store, expire. Numbers return as strings
# because Redis truncates Lua numbers to integers.
_TAKE = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(v[1])
local last = tonumber(v[2])
if tokens == nil or last == nil then tokens = burst; last = now end
if now > last then tokens = math.min(burst, tokens + (now - last) * rate); last = now end
local wait = ''
if tokens >= 1 then
  tokens = tokens - 1
elseif rate > 0 then
  wait = tostring((1 - tokens) / rate)
else
  wait = '60'
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(last))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return wait
"""


class RedisRateLimiter(RateLimiter):
    """One bucket per key in Redis (a hash per key, changed by one Lua script)."""

    blocking = True

    def __init__(
        self,
        redis: Any,
        per_minute: int,
        burst: int,
        clock: Clock = time.time,
        prefix: str = "priorauth:rate:",
    ) -> None:
        super().__init__(per_minute, burst, clock)
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_TAKE)
        refill = self.burst / self.rate if self.rate > 0 else 3600.0
        self._ttl = math.ceil(refill) + 60

    def take(self, key: str) -> float | None:
        out = self._script(
            keys=[self.prefix + key],
            args=[repr(self.clock()), repr(self.rate), repr(self.burst), self._ttl],
        )
        text = out.decode() if isinstance(out, bytes) else str(out)
        return float(text) if text else None


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def make_limiter(
    backend: str,
    per_minute: int,
    burst: int,
    clock: Clock,
    *,
    engine: Engine | None = None,
    redis_url: str = "",
    prefix: str = "",
) -> RateLimiter:
    """The limiter of the configured backend (memory | database | redis)."""
    if backend == "memory":
        return RateLimiter(per_minute, burst, clock)
    if backend == "database":
        if engine is None:
            raise ValueError("the database rate-limit backend needs an engine")
        return _Prefixed(DatabaseRateLimiter(engine, per_minute, burst, clock), prefix)
    if backend == "redis":
        return RedisRateLimiter(
            redis_client(redis_url), per_minute, burst, clock, "priorauth:rate:" + prefix
        )
    raise ValueError(f"unknown rate-limit backend {backend!r}")


class _Prefixed(RateLimiter):
    """Two budgets (clients, addresses) in one table, kept apart by a key prefix."""

    def __init__(self, inner: RateLimiter, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix
        self.blocking = inner.blocking
        self.rate, self.burst, self.clock = inner.rate, inner.burst, inner.clock

    def take(self, key: str) -> float | None:
        return self.inner.take(self.prefix + key)


@dataclass(frozen=True)
class RefusalSummary:
    """How many requests of one key were refused in one window."""

    key: str
    window_start: float
    refused: int


class RefusalTally:
    """Counts refusals per key and window instead of auditing each one.

    `count` notes a refusal; `closed` hands back the windows that have ended, each to be
    written as one audit record; `drain` hands back every open window (at shutdown).
    """

    def __init__(self, window_seconds: float = 60.0, max_keys: int = 10_000) -> None:
        self.window = window_seconds
        self.max_keys = max_keys
        self._open: dict[str, list[float]] = {}  # key -> [window start, refused]
        self._next_close = math.inf
        self._lock = threading.Lock()

    def count(self, key: str, now: float) -> list[RefusalSummary]:
        """Note one refusal; returns the summaries of windows that closed meanwhile."""
        with self._lock:
            done = self._closed(now)
            entry = self._open.get(key)
            if entry is None:
                if len(self._open) >= self.max_keys:  # many addresses at once: one bucket
                    key = "(other)"
                entry = self._open.setdefault(key, [now, 0.0])
                self._next_close = min(self._next_close, entry[0] + self.window)
            entry[1] += 1
            return done

    def closed(self, now: float) -> list[RefusalSummary]:
        if now < self._next_close:  # the common case, without the lock
            return []
        with self._lock:
            return self._closed(now)

    def drain(self) -> list[RefusalSummary]:
        with self._lock:
            out = [RefusalSummary(k, v[0], int(v[1])) for k, v in self._open.items()]
            self._open.clear()
            self._next_close = math.inf
            return out

    def _closed(self, now: float) -> list[RefusalSummary]:
        if now < self._next_close:
            return []
        out = []
        for k, (start, n) in list(self._open.items()):
            if now >= start + self.window:
                out.append(RefusalSummary(k, start, int(n)))
                del self._open[k]
        self._next_close = min((v[0] + self.window for v in self._open.values()), default=math.inf)
        return out
