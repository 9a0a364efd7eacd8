"""Request-rate limits for the supplier: in-process, or shared by every worker through Redis.

Both are token buckets (GCRA): a steady ``rate`` per second with a small ``burst``. The
supplier's budget is one number for the whole distributor, so with several workers the
Redis limiter is the one that holds; the in-process one serves the embedded mode and the CLI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis


class RateLimiter(Protocol):
    def acquire(self) -> None:
        """Block until one request may be sent."""


class NoLimit:
    def acquire(self) -> None:
        return None


class TokenBucket:
    """A thread-safe GCRA limiter for one process."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._tolerance = self._interval * max(burst - 1, 0)
        self._tat = 0.0  # theoretical arrival time of the next request
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            wait = tat - self._tolerance - now
            self._tat = tat + self._interval
        if wait > 0:
            self._sleep(wait)


# KEYS[1] bucket key; ARGV: interval_us, tolerance_us. Returns microseconds to wait (0 = go).
# The slot is reserved even when a wait is returned, so callers sleep and then send.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1000)
if wait < 0 then wait = 0 end
return wait
"""


class RedisRateLimiter:
    """A GCRA limiter whose state lives in Redis, so every worker draws on one budget.

    Uses Redis's own clock (``TIME``) so workers on machines with skewed clocks agree.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        rate: float,
        burst: int = 1,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._key = key
        self._interval_us = int(1_000_000 / rate)
        self._tolerance_us = self._interval_us * max(burst - 1, 0)
        self._script = client.register_script(_GCRA_LUA)
        self._sleep = sleep

    def acquire(self) -> None:
        wait_us = int(self._script(keys=[self._key], args=[self._interval_us, self._tolerance_us]))
        if wait_us > 0:
            self._sleep(wait_us / 1_000_000)
