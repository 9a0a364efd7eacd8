"""The read API under gunicorn with the project's configuration: metrics summed across workers,
the token rule, JSON access logs."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ops import BIN, answers, clean_env, free_port, wait_until

API = "catalog_api.app:create_app()"


@contextmanager
def gunicorn(
    env: dict[str, str], bind: str, log: Path, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        str(BIN / "gunicorn"), "-c", "python:worker.gunicorn_conf", "--bind", bind, *extra, API,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_request_metrics_are_summed_across_two_workers(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(DATABASE_URL=sqlite_url, CATALOG_API_ANONYMOUS="true", LOG_FORMAT="json")
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, f"127.0.0.1:{port}", log, "--workers", "2"):
        assert wait_until(lambda: answers(base + "/healthz"), 20), log.read_text()
        # The readiness wait made some requests too: count from the metrics' own baseline.
        before = _healthz_count(httpx.get(base + "/metrics").text)

        def one(_: int) -> int:
            with httpx.Client() as fresh:  # a new connection each, so both workers answer
                return fresh.get(base + "/healthz").status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert set(pool.map(one, range(40))) == {200}
        scrapes = [_healthz_count(httpx.get(base + "/metrics").text) for _ in range(6)]
        pids = {
            json.loads(line)["message"].split()[-1]
            for line in log.read_text().splitlines()
            if line.startswith("{") and "Booting worker" in line
        }
    assert len(pids) == 2
    assert scrapes == [before + 40] * 6, (before, scrapes)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), lines[
        :5
    ]  # LOG_FORMAT=json: one object each
    access = [json.loads(line) for line in lines if '"gunicorn.access"' in line]
    assert access and "GET /healthz" in access[0]["message"]


def _healthz_count(text: str) -> float:
    found = re.search(
        r'catalog_api_requests_total\{route="/healthz",status="200"\} ([0-9.e+]+)', text
    )
    return float(found.group(1)) if found else 0.0


def test_gunicorn_refuses_the_read_api_without_a_token(sqlite_url: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=sqlite_url)
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, f"127.0.0.1:{free_port()}", log) as process:
        assert process.wait(timeout=20) == 1
    assert "CATALOG_API_TOKEN: not set" in log.read_text()
    assert "Traceback" not in log.read_text()


def test_anonymous_access_is_for_loopback_only(sqlite_url: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=sqlite_url, CATALOG_API_ANONYMOUS="true")
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, f"0.0.0.0:{free_port()}", log) as process:
        assert process.wait(timeout=20) == 1
    assert "only on a loopback address" in log.read_text()
