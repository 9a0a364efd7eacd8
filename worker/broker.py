"""kombu's Redis transport, made to survive its own clean-up after Redis goes away.

When the broker connection drops while a task is unacknowledged (every running ``acks_late``
task), Celery collects the connection and then closes its channel; closing the channel tries
to put the unacknowledged messages back, which needs the connection's details, already gone:
an ``AttributeError`` that Celery treats as unrecoverable, so a Redis restart stopped every
worker. Here that case is a connection error instead, which Celery ignores while it
reconnects. (Redis lost those messages anyway when it restarted without persistence.)
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection was already closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    Channel = Channel
