"""Coalescing: let one of many identical requests through per time window.

Two uses, one Protocol. ``first_in`` is the lead edge only: the rolling refresh uses it so a
backlog does not make each tick queue the same oldest products again. ``claim`` adds a
trailing edge for product notices: the first notice in a window refreshes at once, the first
one after it schedules a single trailing refresh at the window's end (so a change made after
the first fetch is not lost), any others in the window are dropped.

Redis (SET NX PX) holds the windows across workers; ``LocalCoalescer`` is the process-local
fallback for the embedded mode. ``worker.runtime`` picks one when the runtime is built.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import redis

log = logging.getLogger(__name__)

KEY_PREFIX = "catalog-sync:coalesce:"
# The trailing refresh runs a little after the window closes, so it is never coalesced itself.
TRAILING_MARGIN_S = 0.25


@dataclass(frozen=True)
class Decision:
    run_now: bool
    run_after_s: float | None = None  # schedule one trailing refresh this many seconds from now


NOW = Decision(run_now=True)
DROP = Decision(run_now=False)


class Coalescer(Protocol):
    def first_in(self, key: str, window_s: float) -> bool:
        """True for the first call with ``key`` in ``window_s`` seconds, False for the rest."""
        ...

    def claim(self, key: str, window_s: float) -> Decision:
        """Decide what a notice for ``key`` does in the current window."""
        ...

    def restart(self, key: str, window_s: float) -> None:
        """Open a new window now (a trailing refresh is about to run)."""
        ...

    def release(self, key: str) -> None:
        """Close the window (the refresh failed; the retry must not be coalesced away)."""
        ...

    def release_trailing(self, key: str) -> None:
        """Free the trailing slot (its refresh could not be scheduled; a later notice takes it)."""
        ...


class RedisCoalescer:
    """Windows in Redis, shared by every worker. Fails open: with Redis away, refresh now."""

    def __init__(self, client: redis.Redis, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    def first_in(self, key: str, window_s: float) -> bool:
        # The mark expires by itself, so a lost message is queued again later.
        window_ms = max(int(window_s * 1000), 1)
        return bool(self.client.set(self.prefix + key, b"1", nx=True, px=window_ms))

    def claim(self, key: str, window_s: float) -> Decision:
        window_ms = int(window_s * 1000)
        if window_ms <= 0:
            return NOW
        lead, trail = f"{self.prefix}{key}", f"{self.prefix}{key}:trailing"
        try:
            if self.client.set(lead, "1", nx=True, px=window_ms):
                return NOW
            remaining_ms = int(self.client.pttl(lead))
            if remaining_ms <= 0:
                return NOW
            if self.client.set(trail, "1", nx=True, px=remaining_ms):
                return Decision(run_now=False, run_after_s=remaining_ms / 1000 + TRAILING_MARGIN_S)
            return DROP
        except redis.RedisError as exc:
            log.warning("coalescing unavailable (%s); refreshing without it", type(exc).__name__)
            return NOW

    def restart(self, key: str, window_s: float) -> None:
        window_ms = int(window_s * 1000)
        if window_ms <= 0:
            return
        try:
            self.client.set(f"{self.prefix}{key}", "1", px=window_ms)
        except redis.RedisError as exc:
            log.warning("coalescing unavailable (%s)", type(exc).__name__)

    def release(self, key: str) -> None:
        self._delete(f"{self.prefix}{key}")

    def release_trailing(self, key: str) -> None:
        self._delete(f"{self.prefix}{key}:trailing")

    def _delete(self, name: str) -> None:
        try:
            self.client.delete(name)
        except redis.RedisError as exc:
            log.warning("coalescing unavailable (%s)", type(exc).__name__)


class LocalCoalescer:
    """The same windows in this process's memory (embedded mode: one worker process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._lead: dict[str, float] = {}
        self._trail: dict[str, float] = {}
        self._clock = clock

    def first_in(self, key: str, window_s: float) -> bool:
        now = self._clock()
        with self._lock:
            if self._lead.get(key, 0.0) > now:
                return False
            self._lead[key] = now + window_s
            if len(self._lead) > 100_000:
                self._lead = {k: t for k, t in self._lead.items() if t > now}
            return True

    def claim(self, key: str, window_s: float) -> Decision:
        if window_s <= 0:
            return NOW
        now = self._clock()
        with self._lock:
            lead_until = self._lead.get(key, 0.0)
            if lead_until <= now:
                self._lead[key] = now + window_s
                return NOW
            if self._trail.get(key, 0.0) <= now:
                self._trail[key] = lead_until
                return Decision(run_now=False, run_after_s=lead_until - now + TRAILING_MARGIN_S)
            return DROP

    def restart(self, key: str, window_s: float) -> None:
        with self._lock:
            self._lead[key] = self._clock() + window_s

    def release(self, key: str) -> None:
        with self._lock:
            self._lead.pop(key, None)

    def release_trailing(self, key: str) -> None:
        with self._lock:
            self._trail.pop(key, None)


def coalesce(coalescer: Coalescer, kind: str, ids: Iterable[int], window_s: float) -> list[int]:
    """The ids not already let through for ``kind`` within the window."""
    return [i for i in ids if coalescer.first_in(f"{kind}:{i}", window_s)]
