"""Bounded, after-commit enqueueing: a broker that is down or slow never delays the reply.

Each publish runs on a small thread pool and is waited for at most ``timeout_s``; past that,
or with too many publishes already in flight, the row is left for the relay to re-queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

log = logging.getLogger(__name__)


class Enqueuer:
    def __init__(
        self, send: Callable[[int], None], *, timeout_s: float = 0.5, max_in_flight: int = 16
    ) -> None:
        self._send = send
        self._timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="callbacks-enqueue")

    def enqueue(self, inbox_id: int) -> bool:
        """Publish one message for ``inbox_id``; ``False`` means the relay will pick it up."""
        if not self._slots.acquire(blocking=False):
            log.warning("inbox %s: broker backlog, left for the relay", inbox_id)
            return False
        future = self._pool.submit(self._send_once, inbox_id)
        try:
            future.result(timeout=self._timeout_s)
            return True
        except FutureTimeout:
            log.warning("inbox %s: broker slow, left for the relay", inbox_id)
        except Exception as exc:
            log.warning(
                "inbox %s: broker unavailable (%s), left for the relay",
                inbox_id,
                type(exc).__name__,
            )
        return False

    def _send_once(self, inbox_id: int) -> None:
        try:
            self._send(inbox_id)
        finally:
            self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
