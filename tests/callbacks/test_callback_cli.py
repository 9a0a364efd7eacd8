"""Operators' commands (``catalog-sync inbox``) and the app as deployed (gunicorn, environment)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from callbacks.intake import SUCCESS
from tests.support.callbacks import (
    PATH,
    SAMPLES,
    SIGN_KEY,
    FakeCatalog,
    Sent,
    encode,
    envelope,
    post_chunked,
    receive,
    run,
    signed,
    wait_for,
)
from worker.cli import main
from worker.runtime import build_runtime, set_runtime
from worker.settings import Settings

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def runtime(cb_settings: Settings) -> Iterator[Any]:
    built = build_runtime(cb_settings)
    set_runtime(built)
    yield built
    set_runtime(None)
    built.close()


def test_inbox_list_show_and_replay_a_parked_row(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, runtime: Any
) -> None:
    done = receive(app, "order_verify_notify", SAMPLES["order_verify_notify"], sent)
    parked = receive(app, "order_product_notify", {"ProductId": 4, "Status": 2}, sent)
    run(sessions, done)
    for _ in range(3):
        run(sessions, parked, FakeCatalog(fail=True), max_attempts=3)
    cli = CliRunner()
    listed = cli.invoke(main, ["inbox", "list", "--status", "failed", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["id"], r["status"], r["attempts"]) for r in rows] == [(parked, "failed", 3)]
    assert "RuntimeError" in rows[0]["last_error"]
    table = cli.invoke(main, ["inbox", "list"])
    assert table.exit_code == 0 and "order_verify_notify" in table.output
    shown = cli.invoke(main, ["inbox", "show", str(parked)])
    assert shown.exit_code == 0 and json.loads(shown.output)["payload"] == {
        "ProductId": 4,
        "Status": 2,
    }
    assert cli.invoke(main, ["inbox", "show", "999999"]).exit_code != 0
    replayed = cli.invoke(main, ["inbox", "replay", str(parked)])
    assert replayed.exit_code == 0, replayed.output
    assert f"inbox {parked} pending again" in replayed.output
    assert run(sessions, parked).state == "done"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("server", ["gunicorn", "catalog-sync web"])
def test_served_from_the_environment_acknowledges_within_a_second_with_redis_down(
    server: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "ZZY_BASE_URL": "http://127.0.0.1:9",
        "ZZY_PARTNER_ID": "9258",
        "ZZY_SIGN_KEY": SIGN_KEY,
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    bin_dir = Path(sys.executable).parent
    if server == "gunicorn":
        command = [
            str(bin_dir / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "30",
            "callbacks.app:create_app()",
        ]
    else:
        command = [str(bin_dir / "catalog-sync"), "web", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, 20), "server did not come up"
        started = time.monotonic()
        reply = httpx.post(
            base + PATH,
            content=encode(envelope("order_ticket_notify", SAMPLES["order_ticket_notify"])),
            headers=signed(),
            timeout=10,
        )
        assert time.monotonic() - started < 1.0
        assert reply.json() == SUCCESS
        big = encode(
            envelope("order_product_notify", {"ProductId": 5, "Status": 2, "P": "x" * 70_000})
        )
        assert post_chunked(base, big, 300_000, signed()) == 413
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert SIGN_KEY.encode() not in errors and b"36220163556666666" not in errors
