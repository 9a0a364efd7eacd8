"""``catalog-sync sync`` and ``status`` in-process, without a broker."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from tests.support.sync import env_for
from worker.cli import main
from worker.supplier.client import PRICES_PATH, PRODUCTS_PATH


def test_sync_then_status_json(sandbox: Any, sqlite_url: str) -> None:
    runner = CliRunner()
    env = env_for(sandbox, sqlite_url)
    synced = runner.invoke(main, ["sync", "--prices", "all"], env=env)
    assert synced.exit_code == 0, synced.output
    summary = json.loads(synced.stdout)
    assert summary["pass"]["new"] == 30 and summary["prices"] == {
        "refreshed": 30,
        "changed": 30,
        "errors": 0,
        "retries": 0,
    }

    again = runner.invoke(main, ["sync"], env=env)
    assert again.exit_code == 0 and json.loads(again.stdout)["pass"]["unchanged"] == 30

    shown = runner.invoke(main, ["status", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["products"]["total"] == report["products"]["authorized"] == 30
    assert report["products"]["on_shelf"] == sum(
        p["ProductStatus"] == 1 for p in sandbox.state.catalog.true_products()
    )
    assert 0 <= report["prices"]["oldest_refresh_age_s"] < 60
    last = report["last_run"]
    assert {k: last[k] for k in ("kind", "outcome", "seen", "new", "changed", "unchanged", "deauthorized", "reauthorized")} == {
        "kind": "products", "outcome": "ok", "seen": 30, "new": 0, "changed": 0, "unchanged": 30,
        "deauthorized": 0, "reauthorized": 0,
    }  # fmt: skip
    assert last["requests"] == 1 and last["seconds"] >= 0
    assert runner.invoke(main, ["status"], env=env).exit_code == 0


def test_sync_one_product(sandbox: Any, sqlite_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["sync", "--product", "10001", "--prices", "changed"],
        env=env_for(sandbox, sqlite_url),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "product": {"id": 10001, "change": "created"},
        "prices": {"refreshed": 1, "changed": 1, "errors": 0, "retries": 0},
    }


def test_failed_pass_exits_non_zero(sandbox: Any, sqlite_url: str) -> None:
    sandbox.state.traffic.add_fault({"kind": "http500", "count": -1})
    result = CliRunner().invoke(
        main, ["sync", "--prices", "none"], env=env_for(sandbox, sqlite_url)
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["pass"]["outcome"] == "failed"


def test_transient_failures_retried_exit_zero(sandbox: Any, sqlite_url: str) -> None:
    # A busy answer on the first page and on three price calls: each retried, nothing fails.
    sandbox.state.traffic.add_fault({"kind": "busy", "path": PRODUCTS_PATH})
    sandbox.state.traffic.add_fault({"kind": "busy", "path": PRICES_PATH, "count": 3})
    result = CliRunner().invoke(main, ["sync", "--prices", "all"], env=env_for(sandbox, sqlite_url))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pass"]["outcome"] == "ok" and summary["pass"]["retries"] == 1
    assert summary["prices"]["errors"] == 0 and summary["prices"]["retries"] == 3


def test_prices_still_failing_exit_two_and_are_reported(sandbox: Any, sqlite_url: str) -> None:
    failing = sandbox.state.catalog.authorized_ids()[3]
    sandbox.state.traffic.add_fault(
        {"kind": "busy", "path": PRICES_PATH, "count": -1, "match": {"productId": failing}}
    )
    env = env_for(sandbox, sqlite_url)
    result = CliRunner().invoke(main, ["sync", "--prices", "all"], env=env)
    assert result.exit_code == 2, result.output
    summary = json.loads(result.stdout)
    assert summary["pass"]["outcome"] == "ok"
    assert summary["prices"]["errors"] == 1 and summary["prices"]["failing"] == [failing]
    report = json.loads(CliRunner().invoke(main, ["status", "--json"], env=env).stdout)
    assert report["prices"]["failing"] == 1


def test_one_product_still_failing_exits_one_with_the_reason(sandbox: Any, sqlite_url: str) -> None:
    sandbox.state.traffic.add_fault({"kind": "busy", "path": PRODUCTS_PATH, "count": -1})
    result = CliRunner().invoke(
        main, ["sync", "--product", "10001"], env=env_for(sandbox, sqlite_url)
    )
    assert result.exit_code == 1
    product = json.loads(result.stdout)["product"]
    assert product["change"] == "failed" and "busy" in product["error"]


def test_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(main, ["sync", "--help"])
    assert result.exit_code == 0
    assert "Exit codes: 0" in result.output and "2 partial" in result.output


def test_db_upgrade(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(
        main, ["db", "upgrade"], env={"DATABASE_URL": url, "ZZY_BASE_URL": ""}
    )
    assert result.exit_code == 0, result.output
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    assert {"products", "changes", "daily_prices"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
