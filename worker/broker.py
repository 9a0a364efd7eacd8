"""kombu's Redis transport, made to survive its own clean-up after Redis goes away.

When the broker connection drops while a task is unacknowledged (every running ``acks_late``
task), Celery collects the connection and then closes its channel; closing the channel tries
to put the unacknowledged messages back, which needs the connection's details, already gone:
an ``AttributeError`` that Celery treats as unrecoverable, so a Redis restart stopped every
worker. Here that case is a connection error instead, which Celery ignores while it
reconnects. (Redis lost those messages anyway when it restarted without persistence.)

kombu also builds a new redis-py client object for every command outside the consumer's own
(every publish): building one fills a table of about 170 response callbacks, a quarter of a
publish's CPU. A client is only a facade over the channel's connection pool and is safe across
threads, so one is kept per pool and rebuilt when the pool is (after a fork or a reconnect).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    _command_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        cached = self._command_client
        if cached is None or cached.connection_pool is not self.pool:
            cached = self._command_client = self._create_client()  # type: ignore[no-untyped-call]
        yield cached

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection was already closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    Channel = Channel
