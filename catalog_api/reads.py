"""Reads of each product through this API, counted in memory and written in batches: the
background price refresh weighs a product by how often it is read (a stale price shown to
many is worse than one shown to few), and a write per request would cost more than the read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from worker.sync.refresh_history import count_reads

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 10.0


class ReadCounter:
    """Thread-safe per-product read counts, flushed at most every ``flush_every_s`` by the
    request that finds them due (atomic increments: several processes may share the table)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        flush_every_s: float = FLUSH_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._every = flush_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[int] = Counter()
        self._flushed = clock()

    def add(self, product_id: int) -> None:
        with self._lock:
            self._counts[product_id] += 1
            due = self._clock() - self._flushed >= self._every
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what was counted; on a database error the counts are dropped (they are an
        estimate, and holding them would grow without bound while the database is down)."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
            self._flushed = self._clock()
        if not counts:
            return
        try:
            with self._sessions.begin() as session:
                count_reads(session, counts)
        except SQLAlchemyError as exc:
            log.warning("read counts not written (%d products): %s", len(counts), exc)
