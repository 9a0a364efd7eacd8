"""Long-polling the change feed without a database connection per waiting request.

One ``ChangeWatcher`` per app: while any request waits, one thread reads ``max(seq)`` every
``interval_s`` with a short-lived session and wakes the waiters when it grows; when nobody
waits, the thread ends. A waiting request holds a thread, never a database connection.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change

log = logging.getLogger(__name__)


class ChangeWatcher:
    def __init__(self, sessions: sessionmaker[Session], *, interval_s: float = 0.2) -> None:
        self._sessions = sessions
        self._interval_s = interval_s
        self._cond = threading.Condition()
        self._last: int | None = None
        self._waiters = 0
        self._thread: threading.Thread | None = None

    @property
    def last_seen(self) -> int | None:
        with self._cond:
            return self._last

    def wait_past(self, seq: int, timeout_s: float) -> bool:
        """Block until a change with a seq above ``seq`` is seen, or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._waiters += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="change-watcher", daemon=True
                )
                self._thread.start()
            try:
                while True:
                    if self._last is not None and self._last > seq:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            finally:
                self._waiters -= 1

    def _watch(self) -> None:
        while True:
            with self._cond:
                if self._waiters == 0:
                    self._thread = None
                    return
            try:
                with self._sessions() as session:
                    last = session.scalar(select(func.max(Change.seq)))
            except SQLAlchemyError as exc:  # the waiters time out as usual
                log.warning("change watcher cannot read the feed: %s", type(exc).__name__)
                last = None
            if last is not None:
                with self._cond:
                    if self._last is None or last > self._last:
                        self._last = last
                        self._cond.notify_all()
            time.sleep(self._interval_s)
