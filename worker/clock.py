"""One clock for every worker: the database's.

Freshness guards compare when fetches started (``fetched_at`` on products, the price guard).
Stamps taken from each worker's wall clock are not comparable across hosts: a host running
10 s fast would win every race. So stamps come from the database server's clock, read once in
a while and carried forward on the local monotonic clock in between (which never jumps), so a
stamp costs no round trip. The error is bounded by one round trip of the reading query.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

# How long a reading of the database clock is carried on the monotonic clock.
RESYNC_S = 60.0

_QUERIES = {
    "postgresql": "SELECT clock_timestamp()",
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
}


def read_database_clock(engine: Engine) -> datetime:
    """The database server's current time, aware UTC (SQLite: the host's, the file's only clock)."""
    query = _QUERIES.get(engine.dialect.name, "SELECT CURRENT_TIMESTAMP")
    with engine.connect() as connection:
        value = connection.execute(text(query)).scalar_one()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):  # pragma: no cover - a driver returning something odd
        raise TypeError(f"database clock returned {type(value).__name__}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DatabaseClock:
    """``now()`` on the database's clock; thread-safe, one query per ``resync_s``."""

    def __init__(
        self,
        read: Callable[[], datetime],
        *,
        resync_s: float = RESYNC_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._resync_s = resync_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._base: tuple[datetime, float] | None = None

    @classmethod
    def for_sessions(
        cls, sessions: sessionmaker[Session], *, resync_s: float = RESYNC_S
    ) -> DatabaseClock:
        """The clock of the database a session factory is bound to."""
        bind = sessions.kw.get("bind")
        if not isinstance(bind, Engine):  # pragma: no cover - factories here bind an engine
            raise TypeError("session factory is not bound to an engine")
        return cls(lambda: read_database_clock(bind), resync_s=resync_s)

    def now(self) -> datetime:
        """The database's time now, as an aware UTC datetime."""
        with self._lock:
            tick = self._monotonic()
            if self._base is None or tick - self._base[1] >= self._resync_s:
                self._base = (self._read(), self._monotonic())
                return self._base[0]
            base, at = self._base
            return base + timedelta(seconds=tick - at)


_clocks: weakref.WeakKeyDictionary[sessionmaker[Session], DatabaseClock] = (
    weakref.WeakKeyDictionary()
)
_clocks_lock = threading.Lock()


def clock_for(sessions: sessionmaker[Session]) -> DatabaseClock:
    """The shared clock of a session factory (one per factory per process)."""
    with _clocks_lock:
        clock = _clocks.get(sessions)
        if clock is None:
            clock = _clocks[sessions] = DatabaseClock.for_sessions(sessions)
        return clock


def use_clock(sessions: sessionmaker[Session], clock: DatabaseClock) -> None:
    """Make ``clock`` the shared clock of a session factory (tests; a clock kept elsewhere)."""
    with _clocks_lock:
        _clocks[sessions] = clock
