"""Everyday commands: quiet, safe on a fresh machine, usable from cron and monitors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from models.base import utcnow
from models.catalog import Product, SyncRun
from models.db import make_engine, make_session_factory
from tests.support.ops import BIN, answers, clean_env, free_port, wait_until
from worker.cli import main
from worker.settings import ConfigError, Settings, load_settings

SUPPLIER = {
    "ZZY_BASE_URL": "http://127.0.0.1:9",
    "ZZY_PARTNER_ID": "9258",
    "ZZY_SIGN_KEY": "zzy-sandbox-signkey",
}


def settings_with(**values: Any) -> Settings:
    return Settings(_env_file=None, **{"zzy_partner_id": 1, "zzy_sign_key": "k", **values})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "url",
    ["https://api.example.com", "http://127.0.0.1:8900", "http://localhost:1", "http://[::1]:2"],
)
def test_the_supplier_url_is_https_or_loopback(url: str) -> None:
    assert settings_with(zzy_base_url=url).zzy_base_url == url


def test_plain_http_to_another_host_needs_zzy_allow_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZZY_BASE_URL", "http://supplier.example.com")
    monkeypatch.setenv("ZZY_PARTNER_ID", "1")
    monkeypatch.setenv("ZZY_SIGN_KEY", "k")
    with pytest.raises(ConfigError, match="ZZY_BASE_URL must be https://"):
        load_settings()
    monkeypatch.setenv("ZZY_ALLOW_HTTP", "true")
    assert load_settings().zzy_base_url == "http://supplier.example.com"


def test_status_never_creates_a_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/none/catalog.db"}
    result = CliRunner().invoke(main, ["status"], env=env)
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "none").exists()


def test_status_needs_no_supplier_secrets_and_logs_no_migration_lines(sqlite_url: str) -> None:
    done = subprocess.run(
        [str(BIN / "catalog-sync"), "status", "--json"],
        env=clean_env(DATABASE_URL=sqlite_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no alembic "Context impl" lines, nothing at all
    assert json.loads(done.stdout)["problems"] == []


def _record(sqlite_url: str, outcome: str, prices_age: timedelta) -> None:
    sessions = make_session_factory(make_engine(sqlite_url))
    now = utcnow()
    with sessions.begin() as session:
        session.add(SyncRun(kind="products", started_at=now, finished_at=now, outcome=outcome))
        from tests.support import builders as b

        b.product(session, 1, prices_refreshed_at=now - prices_age)
    with sessions() as session:
        assert session.get(Product, 1) is not None


@pytest.mark.parametrize(
    ("outcome", "age", "code", "problem"),
    [
        ("ok", timedelta(hours=1), 0, None),
        ("failed", timedelta(hours=1), 2, "ended failed"),
        ("ok", timedelta(hours=7), 2, "older than PRICE_MAX_AGE"),
    ],
)
def test_status_exits_2_when_the_last_pass_failed_or_prices_are_stale(
    sqlite_url: str, outcome: str, age: timedelta, code: int, problem: str | None
) -> None:
    _record(sqlite_url, outcome, age)
    result = CliRunner().invoke(main, ["status"], env={"DATABASE_URL": sqlite_url})
    assert result.exit_code == code, result.output
    if problem:
        assert problem in result.output


def _head(url: str) -> str:
    """The newest migration, so these tests need no edit when one is added."""
    from models.db import head_revisions

    engine = make_engine(url)
    try:
        (head,) = head_revisions(engine)
    finally:
        engine.dispose()
    return head


def test_status_refuses_a_database_behind_head(sqlite_url: str) -> None:
    from models.db import downgrade

    engine = make_engine(sqlite_url)
    downgrade(engine, "0003")
    engine.dispose()
    result = CliRunner().invoke(main, ["status"], env={"DATABASE_URL": sqlite_url})
    assert result.exit_code == 1
    assert f"not {_head(sqlite_url)}: run `catalog-sync db upgrade`" in result.output


def test_db_upgrade_below_the_current_revision_does_nothing_and_downgrade_does(
    sqlite_url: str,
) -> None:
    runner, env = CliRunner(), {"DATABASE_URL": sqlite_url}
    below = runner.invoke(main, ["db", "upgrade", "--revision", "0003"], env=env)
    assert below.exit_code == 0 and "past 0003: nothing done" in below.output
    down = runner.invoke(main, ["db", "downgrade", "--revision", "0003"], env=env)
    assert down.exit_code == 0 and down.output.strip().endswith("is at 0003")
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0003",)
        ]
    assert (
        runner.invoke(main, ["db", "upgrade"], env=env)
        .output.strip()
        .endswith(f"is at {_head(sqlite_url)}")
    )
    unknown = runner.invoke(main, ["db", "upgrade", "--revision", "9999"], env=env)
    assert unknown.exit_code == 1 and "no migration '9999'" in unknown.output


@pytest.mark.parametrize("command", ["web", "api"])
def test_local_servers_print_their_address(command: str, sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(**SUPPLIER, DATABASE_URL=sqlite_url, CATALOG_API_ANONYMOUS="true",
                    BROKER_DB_URL=f"sqlite:///{tmp_path}/broker.db")  # fmt: skip
    out = tmp_path / "out.log"
    with out.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "catalog-sync"), command, "--port", str(port)], env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 20)
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = out.read_text()
    assert f"listening on http://127.0.0.1:{port}" in text
    assert "alembic" not in text


def test_json_logs_are_one_masked_object_per_line(
    sqlite_url: str, tmp_path: Path, sandbox: Any
) -> None:
    done = subprocess.run(
        [str(BIN / "catalog-sync"), "sync", "--prices", "none"],
        env=clean_env(
            ZZY_BASE_URL=sandbox.url, ZZY_PARTNER_ID="9258", ZZY_SIGN_KEY="wrong-key-0001",
            DATABASE_URL=sqlite_url, LOG_FORMAT="json", LOG_LEVEL="DEBUG",
        ),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines), lines[:3]
    assert "wrong-key-0001" not in done.stderr


def test_the_local_api_serves_anonymously_on_loopback_only(sqlite_url: str) -> None:
    env = {"DATABASE_URL": sqlite_url, "CATALOG_API_ANONYMOUS": "true", "CATALOG_API_TOKEN": ""}
    result = CliRunner().invoke(main, ["api", "--host", "0.0.0.0", "--port", "1"], env=env)
    assert result.exit_code == 1 and "only on a loopback address" in result.output
