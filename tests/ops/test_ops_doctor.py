"""``catalog-sync doctor`` passes on a good setup and fails on each broken part, by name."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from callbacks.app import create_app
from tests.support.settings import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY, make_settings
from worker.cli import main

TOKEN = "a-long-random-token-for-the-read-api"


@pytest.fixture
def receiver(sandbox: Any, sqlite_url: str) -> Iterator[str]:
    """The callback receiver on a free loopback port; its notify URL."""
    app = create_app(make_settings(sandbox.url, sqlite_url), send=lambda _inbox_id: None)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/callbacks/zzy"
    server.shutdown()


@pytest.fixture
def good(sandbox: Any, sqlite_url: str, receiver: str, tmp_path: Path) -> dict[str, str]:
    return {
        "ZZY_BASE_URL": sandbox.url,
        "ZZY_PARTNER_ID": str(SANDBOX_PARTNER_ID),
        "ZZY_SIGN_KEY": SANDBOX_SIGN_KEY,
        "DATABASE_URL": sqlite_url,
        "BROKER_DB_URL": f"sqlite:///{tmp_path}/broker.db",
        "CALLBACK_URL": receiver,
        "CATALOG_API_TOKEN": TOKEN,
        "REDIS_URL": "",
    }


def doctor(env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, ["doctor", "--timeout", "3"], env=env)


def test_doctor_passes_on_a_good_setup_and_masks_secrets(good: dict[str, str]) -> None:
    result = doctor(good)
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output
    assert "clock skew" in result.output and " ms" in result.output
    assert "verified and stored a signed probe" in result.output
    # The probe is stored like every verified request, as done: never applied, never invalid.
    with sqlite3.connect(good["DATABASE_URL"].removeprefix("sqlite:///")) as connection:
        rows = connection.execute("SELECT service_name, status FROM inbox").fetchall()
    assert rows == [("catalog_sync_probe", "done")]
    assert SANDBOX_SIGN_KEY not in result.output and TOKEN not in result.output
    assert "ZZY_SIGN_KEY = *** (set)" in result.output


def test_doctor_passes_with_redis(good: dict[str, str], redis_url: str) -> None:
    result = doctor({**good, "REDIS_URL": redis_url})
    assert result.exit_code == 0, result.output


def at_revision_0003(sqlite_url: str) -> str:
    from models.db import downgrade, make_engine

    engine = make_engine(sqlite_url)
    downgrade(engine, "0003")
    engine.dispose()
    return sqlite_url


BROKEN: dict[str, tuple[dict[str, str], str]] = {
    "database unreachable": (
        {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"},
        "database",
    ),
    "database behind head": ({"DATABASE_URL": "BEHIND"}, "database"),
    "redis unreachable": ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "redis"),
    "broker unusable": ({"BROKER_DB_URL": "sqlite:////proc/no-such-folder/b.db"}, "broker"),
    "supplier unreachable": ({"ZZY_BASE_URL": "http://127.0.0.1:1"}, "supplier"),
    "supplier refuses our key": ({"ZZY_SIGN_KEY": "not-the-key"}, "supplier"),
    "callback receiver absent": ({"CALLBACK_URL": "http://127.0.0.1:1/callbacks/zzy"}, "callback"),
    "callback path not the signed one": ({"CALLBACK_URL": "RECEIVER/elsewhere"}, "callback"),
    "no API token": ({"CATALOG_API_TOKEN": ""}, "api token"),
    "short API token": ({"CATALOG_API_TOKEN": "short"}, "api token"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_doctor_fails_on_each_broken_part(case: str, good: dict[str, str], sqlite_url: str) -> None:
    changes, part = BROKEN[case]
    env = {**good, **changes}
    if env["DATABASE_URL"] == "BEHIND":
        env["DATABASE_URL"] = at_revision_0003(sqlite_url)
    if env["CALLBACK_URL"].startswith("RECEIVER"):
        env["CALLBACK_URL"] = good["CALLBACK_URL"].rsplit("/callbacks", 1)[0] + "/elsewhere"
    result = doctor(env)
    assert result.exit_code == 1, result.output
    assert f"FAIL  {part}:" in result.output, result.output
    assert f"ok    {part}:" not in result.output
