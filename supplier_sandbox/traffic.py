"""What happens to requests before they are served: counting, LogIds, latency and faults."""

from __future__ import annotations

import datetime
import itertools
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from supplier_sandbox.config import SUPPLIER_TZ
from supplier_sandbox.envelope import make_log_id
from supplier_sandbox.faults import SERVE_KINDS, TRANSPORT_KINDS, Fault, fault_from_json, take_due


class Traffic:
    """Request counts, scripted faults and the seeded coin for random failures."""

    def __init__(
        self,
        lock: threading.RLock,
        *,
        seed: int,
        latency_ms: float,
        fail_rate: float,
        fault_kinds: tuple[str, ...] = ("http500",),
    ) -> None:
        self._lock = lock
        self.latency_ms = latency_ms
        self.fail_rate = fail_rate
        self._coin = random.Random(f"fail-rate-{seed}")
        self.fault_kinds = fault_kinds
        self.shape_rng = random.Random(f"quirks-{seed}")  # for quirks that vary per answer
        self._counts: Counter[str] = Counter()
        # When each recent request arrived (monotonic), for the peak rate a distributor reached.
        self._arrivals: deque[float] = deque(maxlen=200_000)
        self._faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        self._log_ids = itertools.count(1)
        self._released = threading.Event()

    def next_log_id(self) -> str:
        """A fresh LogId for a response."""
        with self._lock:
            sequence = next(self._log_ids)
        return make_log_id(datetime.datetime.now(SUPPLIER_TZ), sequence)

    # -- counts ------------------------------------------------------------------------------

    def count(self, path: str) -> None:
        """Record one request to a supplier path."""
        with self._lock:
            self._counts[path] += 1
            self._arrivals.append(time.monotonic())

    def stats(self) -> dict[str, Any]:
        """Requests received per path and in total since the last reset, and the most received
        in any one second (``peak_per_s``: what a rate limit on the caller's side must bound)."""
        with self._lock:
            return {
                "total": sum(self._counts.values()),
                "by_path": dict(sorted(self._counts.items())),
                "peak_per_s": self.peak(1.0),
            }

    def peak(self, window_s: float) -> int:
        """The most requests that arrived within any sliding window of ``window_s``."""
        with self._lock:
            arrivals = list(self._arrivals)
        best, start = 0, 0
        for end, at in enumerate(arrivals):
            while at - arrivals[start] >= window_s:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset_stats(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._counts.clear()
            self._arrivals.clear()

    # -- faults ------------------------------------------------------------------------------

    def add_fault(self, spec: Mapping[str, Any]) -> Fault:
        """Script a fault (see ``faults.fault_from_json`` for the fields); raises ValueError."""
        with self._lock:
            fault = fault_from_json(next(self._fault_ids), spec)
            self._faults.append(fault)
            return fault

    def faults(self) -> list[dict[str, Any]]:
        """Every scripted fault with how often it has matched and fired."""
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def clear_faults(self, fault_id: int | None = None) -> int:
        """Remove one fault, or all of them; returns how many were removed."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
            return before - len(self._faults)

    def transport_fault(self, path: str, args: Mapping[str, Any]) -> Fault | None:
        """The fault that replaces this request's answer: scripted first, then at ``fail_rate``
        one of ``fault_kinds`` (plain HTTP 500 unless fault quirks are on)."""
        with self._lock:
            due = take_due(self._faults, path, args, TRANSPORT_KINDS, first_only=True)
            if due:
                return due[0]
            if self.fail_rate > 0 and self._coin.random() < self.fail_rate:
                kind = self._coin.choice(self.fault_kinds)
                return Fault(id=0, kind=kind, path=path, message=None, code=None)
            return None

    def pick(self, choices: tuple[Any, ...]) -> Any:
        """A seeded choice, for answers that vary (busy wording, error status)."""
        with self._lock:
            return self._coin.choice(choices)

    def serve_faults(self, path: str, args: Mapping[str, Any]) -> list[Fault]:
        """Faults that act while a signed request is served (drift, empty page)."""
        with self._lock:
            return take_due(self._faults, path, args, SERVE_KINDS, first_only=False)

    def hold(self, seconds: float) -> None:
        """Sleep for a held request, cut short when the sandbox stops."""
        self._released.wait(seconds)

    def release_holds(self) -> None:
        """Let every held request go (on shutdown)."""
        self._released.set()
