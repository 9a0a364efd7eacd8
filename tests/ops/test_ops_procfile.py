"""``honcho start`` with the project's Procfile on a fresh machine: nothing but the three
``ZZY_*`` variables (and free ports), embedded mode, a new database each time."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ops import BIN, ROOT, answers, clean_env, free_port, wait_until

HEALTHY_WITHIN_S = 20.0


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_honcho_start_brings_up_all_five_processes_on_a_fresh_database(
    tmp_path: Path, attempt: int
) -> None:
    web, api, sandbox = free_port(), free_port(), free_port()
    env = clean_env(
        ZZY_BASE_URL=f"http://127.0.0.1:{sandbox}",
        ZZY_PARTNER_ID="9258",
        ZZY_SIGN_KEY="zzy-sandbox-signkey",
        WEB_PORT=str(web),
        API_PORT=str(api),
        SANDBOX_PORT=str(sandbox),
        PRODUCT_NOTICE_COALESCE_S="0",
    )
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "-f", str(ROOT / "Procfile"), "-d", str(tmp_path), "start"],
            env=env,
            cwd=tmp_path,  # the fresh machine: var/ (databases, locks) is made here
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()

    def logged() -> str:
        return log_path.read_text(errors="replace")

    def all_healthy() -> bool:
        return (
            answers(f"http://127.0.0.1:{web}/healthz")
            and answers(f"http://127.0.0.1:{api}/readyz")
            and answers(f"http://127.0.0.1:{sandbox}/_admin/stats")
            and " ready." in logged()  # the Celery worker
            and "holds the beat lock" in logged()  # beat
        )

    try:
        assert wait_until(all_healthy, HEALTHY_WITHIN_S), logged()[-6000:]
        healthy_after = time.monotonic() - started
        print(f"attempt {attempt}: all five healthy after {healthy_after:.1f} s")

        admin = httpx.Client(base_url=f"http://127.0.0.1:{sandbox}/_admin", timeout=5)
        product_id = admin.get("/products").json()["products"][0]["ProductId"]
        reply = admin.post(
            f"/products/{product_id}/reprice", json={"delta": "1.00", "notify": True}
        )
        assert reply.status_code == 200, reply.text
        database = tmp_path / "var" / "catalog.db"

        def applied() -> bool:
            try:
                with sqlite3.connect(database) as connection:
                    rows = connection.execute("SELECT status FROM inbox").fetchall()
            except sqlite3.Error:
                return False
            return rows == [("done",)]

        assert wait_until(applied, 30), logged()[-6000:]

        def first_pass_done() -> bool:  # beat starts the first product pass at once
            with sqlite3.connect(database) as connection:
                rows = connection.execute(
                    "SELECT outcome, seen FROM sync_runs WHERE kind = 'products'"
                ).fetchall()
            return bool(rows) and rows[0] == ("ok", 200)

        assert wait_until(first_pass_done, 20), logged()[-6000:]
        assert honcho.poll() is None, "a process exited and honcho stopped the others"
        assert "exited with code" not in logged() and "Traceback" not in logged(), logged()
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
