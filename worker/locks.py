"""One product pass at a time (and one beat): a Redis lock renewed while held, or a file lock
beside the embedded database, which every process on the machine shares.

Both are non-blocking: a pass that finds the lock held is skipped, not queued behind it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

import redis
from redis.exceptions import LockError

log = logging.getLogger(__name__)

PASS_LOCK_KEY = "catalog-sync:lock:product-pass"
BEAT_LOCK_KEY = "catalog-sync:lock:beat"


class PassLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if free; True when taken."""

    def release(self) -> None:
        """Give it back (a no-op when not held)."""


class RedisLock:
    """redis-py's ``Lock`` (token, expiry, owner-only release), renewed every third of its TTL.

    A holder that dies stops renewing and the lock expires after ``ttl_s``; a holder that lives
    keeps it however long its work runs. ``on_lost`` is called if a renewal finds the lock gone.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str = PASS_LOCK_KEY,
        *,
        ttl_s: float = 60.0,
        renew: bool = True,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._lock = client.lock(key, timeout=ttl_s, blocking=False, thread_local=False)
        self._key = key
        self._interval = ttl_s / 3
        self._renew = renew
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        if self._renew:
            self._stop.clear()
            self._renewer = threading.Thread(
                target=self._keep, name=f"renew {self._key}", daemon=True
            )
            self._renewer.start()
        return True

    def _keep(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._lock.reacquire()
            except LockError:
                log.error("lock %s was lost (expired or taken over)", self._key)
                if self._on_lost is not None:
                    self._on_lost()
                return
            except redis.RedisError as exc:  # try again next time, the TTL still runs
                log.warning("lock %s not renewed: %s", self._key, type(exc).__name__)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        try:
            self._lock.release()
        except LockError:
            pass  # expired (and maybe taken by another holder): nothing of ours to free
        except redis.RedisError as exc:  # it expires by itself; the work's result still counts
            log.warning("lock %s not released: %s", self._key, type(exc).__name__)


class FileLock:
    """``flock`` on a file beside the embedded database; the OS frees it if the process dies."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self._path, "ab")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def pass_lock(client: redis.Redis | None, lock_dir: Path, *, ttl_s: float = 60.0) -> PassLock:
    """The lock for this deployment: Redis when there is one, else a file in ``lock_dir``."""
    if client is not None:
        return RedisLock(client, ttl_s=ttl_s)
    return FileLock(lock_dir / f"product-pass-{os.getuid()}.lock")


def beat_lock(
    client: redis.Redis | None, lock_dir: Path, *, on_lost: Callable[[], None] | None = None
) -> PassLock:
    """The lock that makes one beat the scheduler; the others stand by."""
    if client is not None:
        return RedisLock(client, BEAT_LOCK_KEY, ttl_s=30.0, on_lost=on_lost)
    return FileLock(lock_dir / f"beat-{os.getuid()}.lock")


@contextlib.contextmanager
def holding(lock: PassLock) -> Iterator[bool]:
    """``with holding(lock) as taken:`` runs the body either way and releases only what it took."""
    taken = lock.acquire()
    try:
        yield taken
    finally:
        if taken:
            lock.release()


def lock_dir_for(database_url: str) -> Path:
    """Where embedded-mode locks and the rate budget live: beside the SQLite file, else (another
    database without Redis) a per-user folder named after the database, whatever the cwd."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and ":memory:" not in database_url:
        return Path(database_url[len(prefix) :].split("?")[0]).resolve().parent
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"catalog-sync-{os.getuid()}" / digest
