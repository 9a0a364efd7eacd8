"""Request-rate limits for the supplier: shared by every process on the machine through a file,
or by every worker on every machine through Redis (and an in-process one for tests and tools).

All are token buckets (GCRA): a steady ``rate`` per second with a small ``burst``. The
supplier's budget is one number for the whole distributor: with Redis the Redis limiter holds
it; in embedded mode (no Redis, one machine) the file limiter holds it across the Procfile's
worker processes, the CLI and the callback worker alike.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
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


class FileRateLimiter:
    """A GCRA limiter whose state (the next theoretical arrival time) lives in a small file.

    Every process that opens the same file draws on one budget: each ``acquire`` takes an
    exclusive ``flock``, reads and advances the arrival time, and releases it before sleeping.
    Wall-clock time is shared by the processes of one machine; a time far in the future (a
    clock stepped back) is treated as "now" so a bad stamp cannot stall the workers.
    """

    _FORMAT = "<d"

    def __init__(
        self,
        path: Path,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._path = path
        self._interval = 1.0 / rate
        self._tolerance = self._interval * max(burst - 1, 0)
        self._clock = clock
        self._sleep = sleep
        self._local = threading.Lock()  # flock is per open file: threads queue here first
        self._fd: int | None = None
        self._pid = 0

    def _handle(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> None:
        with self._local:
            fd = self._handle()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(fd, 8, 0)
                now = self._clock()
                tat = struct.unpack(self._FORMAT, raw)[0] if len(raw) == 8 else now
                if tat > now + 3600:  # a stamp from a clock that has since stepped back
                    tat = now
                tat = max(tat, now)
                wait = tat - self._tolerance - now
                os.pwrite(fd, struct.pack(self._FORMAT, tat + self._interval), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
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
