"""With Redis: one beat schedules while a second stands by, and takes over when the first stops."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import redis

from tests.support.ops import BIN, clean_env, wait_until
from worker.locks import BEAT_LOCK_KEY


def beat(env: dict[str, str], tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "celery"), "--quiet", "-A", "worker.celery_app", "beat",
             "--schedule", str(tmp_path / f"{name}-schedule")],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, log


def test_a_second_beat_stands_by_until_the_first_stops(
    redis_url: str, redis_client: redis.Redis, sqlite_url: str, tmp_path: Path
) -> None:
    env = clean_env(
        ZZY_BASE_URL="http://127.0.0.1:9", ZZY_PARTNER_ID="9258", ZZY_SIGN_KEY="zzy-sandbox-signkey",
        DATABASE_URL=sqlite_url, REDIS_URL=redis_url,
    )  # fmt: skip
    first, first_log = beat(env, tmp_path, "first")
    second: subprocess.Popen[bytes] | None = None
    try:
        assert wait_until(lambda: "holds the beat lock" in first_log.read_text(), 20)
        assert redis_client.ttl(BEAT_LOCK_KEY) > 0
        second, second_log = beat(env, tmp_path, "second")
        assert wait_until(lambda: "standing by" in second_log.read_text(), 20)
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)
        assert wait_until(lambda: "holds the beat lock" in second_log.read_text(), 12), (
            second_log.read_text()
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)


def test_every_redis_client_has_socket_and_connect_timeouts(
    redis_url: str, sqlite_url: str
) -> None:
    from tests.support.settings import make_settings
    from worker.celery_app import create_celery
    from worker.runtime import build_runtime
    from worker.startup import redis_client

    settings = make_settings("http://127.0.0.1:9", sqlite_url, redis_url=redis_url)
    runtime = build_runtime(settings)
    try:
        for client in (runtime.redis, redis_client(redis_url)):
            assert client is not None
            kwargs = client.connection_pool.connection_kwargs
            assert kwargs["socket_timeout"] and kwargs["socket_connect_timeout"], kwargs
    finally:
        runtime.close()
    options = create_celery(settings, queue="unused").conf.broker_transport_options
    assert options["socket_timeout"] and options["socket_connect_timeout"]


def test_a_cli_pass_takes_the_same_redis_lock_as_the_workers(
    redis_url: str, redis_client: redis.Redis, sqlite_url: str, sandbox: object
) -> None:
    from click.testing import CliRunner

    from worker.cli import main
    from worker.locks import PASS_LOCK_KEY, RedisLock

    env = {
        "ZZY_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "ZZY_PARTNER_ID": "9258",
        "ZZY_SIGN_KEY": "zzy-sandbox-signkey",
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": redis_url,
    }
    worker_pass = RedisLock(redis_client, PASS_LOCK_KEY)
    assert worker_pass.acquire()
    try:
        busy = CliRunner().invoke(main, ["sync", "--prices", "none"], env=env)
        assert busy.exit_code == 1 and "another product pass is running" in busy.output
    finally:
        worker_pass.release()
    done = CliRunner().invoke(main, ["sync", "--prices", "none"], env=env)
    assert done.exit_code == 0, done.output
    assert redis_client.exists(PASS_LOCK_KEY) == 0  # given back


def test_a_worker_channel_closed_after_its_connection_was_collected_raises_a_connection_error(
    redis_url: str, sqlite_url: str
) -> None:
    """What Celery does when Redis drops under a running acks_late task: collect the
    connection, then close the channel (which restores unacked messages). kombu's own channel
    raised AttributeError there, which stopped the worker; ours raises a connection error,
    which Celery ignores while it reconnects."""
    from kombu import Connection

    from tests.support.settings import make_settings
    from worker.broker import Transport
    from worker.celery_app import create_celery

    app = create_celery(make_settings("http://127.0.0.1:9", sqlite_url, redis_url=redis_url))
    assert app.conf.broker_transport == "worker.broker:Transport"
    connection = Connection(redis_url, transport=app.conf.broker_transport)
    channel = connection.channel()
    connection.collect()
    with pytest.raises(Transport.connection_errors):
        channel._connparams()
