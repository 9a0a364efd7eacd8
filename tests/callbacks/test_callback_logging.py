"""Masked logs everywhere, not only in the callback app: a real Celery worker process (its own
log set-up, task tracebacks) and the command line."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from tests.support.callbacks import ID_NUMBER, MOBILE, SAMPLES, SIGN_KEY, Sent, wait_for
from tests.support.settings import make_settings
from worker.celery_app import _mask_logger_handlers, create_celery
from worker.cli import main
from worker.settings import Settings

pytestmark = pytest.mark.timeout(90)

MASKED_ID = "3622*********6666"
MASKED_MOBILE = "181****2623"


def assert_masked(text: str) -> None:
    assert ID_NUMBER not in text and MOBILE not in text and SIGN_KEY not in text, text
    assert MASKED_MOBILE in text, text


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (the commands configure it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_celery_logging_signal_masks_every_handler_of_the_logger(sqlite_url: str) -> None:
    create_celery(make_settings("http://127.0.0.1:9", sqlite_url), queue="unused")
    stream = io.StringIO()
    logger = logging.Logger("celery-test-logger")
    logger.addHandler(logging.StreamHandler(stream))
    _mask_logger_handlers(logger=logger, loglevel=logging.INFO, logfile=None)
    _mask_logger_handlers(logger=logger)  # the second signal (task logger) adds no second filter
    try:
        raise RuntimeError(f"card {ID_NUMBER}")
    except RuntimeError:
        logger.exception("rejected: mobile %s key %s", MOBILE, SIGN_KEY)
    assert len(logger.handlers[0].filters) == 1
    assert_masked(stream.getvalue())
    assert MASKED_ID in stream.getvalue() and "RuntimeError" in stream.getvalue()


def test_a_real_celery_worker_masks_logged_messages_and_task_tracebacks(
    sqlite_url: str, tmp_path: Path
) -> None:
    queue = f"leaky-{uuid.uuid4().hex[:8]}"
    broker = f"sqlite:///{tmp_path}/broker.db"
    env = {
        **os.environ,
        "ZZY_BASE_URL": "http://127.0.0.1:9",
        "ZZY_PARTNER_ID": "9258",
        "ZZY_SIGN_KEY": SIGN_KEY,
        "DATABASE_URL": sqlite_url,
        "BROKER_DB_URL": broker,
        "LEAKY_QUEUE": queue,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path.cwd())]),
    }
    env.pop("REDIS_URL", None)
    log_path = tmp_path / "worker.log"
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "leaky_celery_app",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    settings = make_settings("http://127.0.0.1:9", sqlite_url, broker_db_url=broker)
    sender = create_celery(settings, queue=queue)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path
        )
        try:
            sender.send_task("tests.callbacks.leaky", queue=queue)

            def logged() -> str:
                return log_path.read_text(errors="replace")

            assert wait_for(lambda: "Traceback" in logged(), 60), logged()
        finally:
            process.terminate()
            process.wait(timeout=20)
    text = logged()
    assert "supplier rejected the request" in text and "task logger" in text, text
    assert "RuntimeError" in text
    assert_masked(text)


def _leaking(*_: Any, **__: Any) -> dict[str, Any]:
    logging.getLogger("worker.supplier.client").warning(
        "supplier rejected: Message=%s %s key %s", ID_NUMBER, MOBILE, SIGN_KEY
    )
    return {"products": {}, "prices": {}, "runs": []}


def test_catalog_sync_command_masks_its_logs(
    sqlite_url: str, root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.sync.status.collect_status", _leaking)
    env = {
        "ZZY_BASE_URL": "http://127.0.0.1:9",
        "ZZY_PARTNER_ID": "9258",
        "ZZY_SIGN_KEY": SIGN_KEY,
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": "",
    }
    result = CliRunner().invoke(main, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "supplier rejected" in result.stderr
    assert_masked(result.output)


def test_inbox_command_masks_its_logs(
    app: Flask,
    sent: Sent,
    cb_settings: Settings,
    root_logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callbacks import commands
    from tests.support.callbacks import receive
    from worker.runtime import build_runtime, set_runtime

    receive(app, "order_verify_notify", SAMPLES["order_verify_notify"], sent)
    real = commands._as_dict

    def as_dict(row: Any, *, full: bool = False) -> dict[str, Any]:
        _leaking()
        return real(row, full=full)

    monkeypatch.setattr(commands, "_as_dict", as_dict)
    runtime = build_runtime(cb_settings)
    set_runtime(runtime)
    try:
        result = CliRunner().invoke(main, ["inbox", "list"])
    finally:
        set_runtime(None)
        runtime.close()
    assert result.exit_code == 0, result.output
    assert "supplier rejected" in result.stderr and "order_verify_notify" in result.stdout
    assert_masked(result.output)
