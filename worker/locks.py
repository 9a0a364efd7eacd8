"""One product pass at a time: a Redis lock with expiry across workers, a file lock when embedded.

Both are non-blocking: a pass that finds the lock held is skipped, not queued behind it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

import redis

PASS_LOCK_KEY = "catalog-sync:lock:product-pass"

# Delete the key only if it still holds our token (an expired lock may belong to another pass).
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class PassLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if free; True when taken."""

    def release(self) -> None:
        """Give it back (a no-op when not held)."""


class RedisLock:
    """``SET NX PX`` with a random token; expires by itself if its holder dies."""

    def __init__(
        self, client: redis.Redis, key: str = PASS_LOCK_KEY, *, ttl_s: float = 900.0
    ) -> None:
        self._client = client
        self._key = key
        self._ttl_ms = int(ttl_s * 1000)
        self._token = uuid.uuid4().hex
        self._held = False

    def acquire(self) -> bool:
        self._held = bool(self._client.set(self._key, self._token, nx=True, px=self._ttl_ms))
        return self._held

    def release(self) -> None:
        if self._held:
            self._client.eval(_RELEASE_LUA, 1, self._key, self._token)
            self._held = False


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


def pass_lock(client: redis.Redis | None, lock_dir: Path, *, ttl_s: float = 900.0) -> PassLock:
    """The lock for this deployment: Redis when there is one, else a file in ``lock_dir``."""
    if client is not None:
        return RedisLock(client, ttl_s=ttl_s)
    return FileLock(lock_dir / f"product-pass-{os.getuid()}.lock")


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
    """Where embedded-mode lock files live: beside the SQLite file, else ``var``."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and ":memory:" not in database_url:
        return Path(database_url[len(prefix) :]).parent
    return Path("var")
