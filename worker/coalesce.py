"""Coalescing: let one of many identical requests through per time window.

The rolling refresh uses it so a backlog does not make each tick queue the same oldest
products again; Redis holds the marks when there is one (shared by beat and every worker),
a dict otherwise (the embedded mode, where one process queues).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import redis


class Coalescer(Protocol):
    def first_in(self, key: str, window_s: float) -> bool:
        """True for the first call with ``key`` in ``window_s`` seconds, False for the rest."""


class RedisCoalescer:
    """``SET NX PX``: the mark expires by itself, so a lost message is queued again later."""

    def __init__(self, client: redis.Redis, prefix: str = "catalog-sync:coalesce:") -> None:
        self._client = client
        self._prefix = prefix

    def first_in(self, key: str, window_s: float) -> bool:
        return bool(
            self._client.set(self._prefix + key, b"1", nx=True, px=max(int(window_s * 1000), 1))
        )


class MemoryCoalescer:
    """The same in one process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def first_in(self, key: str, window_s: float) -> bool:
        now = self._clock()
        with self._lock:
            if self._until.get(key, 0.0) > now:
                return False
            self._until[key] = now + window_s
            if len(self._until) > 100_000:
                self._until = {k: t for k, t in self._until.items() if t > now}
            return True


def coalesce(coalescer: Coalescer, kind: str, ids: Iterable[int], window_s: float) -> list[int]:
    """The ids not already let through for ``kind`` within the window."""
    return [i for i in ids if coalescer.first_in(f"{kind}:{i}", window_s)]
