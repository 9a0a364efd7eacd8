"""Each bad configuration, for every command and every Procfile process: a non-zero exit, at most
two lines naming the variable, no traceback (``--debug`` shows one)."""

from __future__ import annotations

import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.ops import BIN, clean_env, free_port

CLI = str(BIN / "catalog-sync")
GOOD = {
    "ZZY_BASE_URL": "http://127.0.0.1:9",
    "ZZY_PARTNER_ID": "9258",
    "ZZY_SIGN_KEY": "zzy-sandbox-signkey",
    "CATALOG_API_ANONYMOUS": "true",
}
UNREACHABLE_PG = "postgresql+psycopg://nobody@127.0.0.1:1/x"
UNUSABLE_BROKER = "sqlite:////proc/no-such-folder/broker.db"


def processes() -> dict[str, list[str]]:
    gunicorn = [str(BIN / "gunicorn"), "-c", "python:worker.gunicorn_conf", "--workers", "1"]
    celery = [str(BIN / "celery"), "-A", "worker.celery_app"]
    return {
        "status": [CLI, "status"],
        "sync": [CLI, "sync"],
        "db upgrade": [CLI, "db", "upgrade"],
        "inbox list": [CLI, "inbox", "list"],
        "web": [CLI, "web", "--port", str(free_port())],
        "api": [CLI, "api", "--port", str(free_port())],
        "gunicorn web": [*gunicorn, "--bind", f"127.0.0.1:{free_port()}", "callbacks.app:create_app()"],
        "gunicorn api": [*gunicorn, "--bind", f"127.0.0.1:{free_port()}", "catalog_api.app:create_app()"],
        "celery worker": [*celery, "worker", "--pool", "solo", "--without-mingle", "--without-gossip"],
        "celery beat": [str(BIN / "celery"), "--quiet", "-A", "worker.celery_app", "beat", "--schedule", "var/beat"],
    }  # fmt: skip


SUPPLIER_FREE = {"status", "db upgrade", "api", "gunicorn api"}  # never read ZZY_* at all
BROKER_USERS = {"celery worker", "celery beat"}
REDIS_USERS = {"sync", "celery worker", "celery beat"}


def database_ahead(tmp_path: Path) -> str:
    """A database migrated by a newer release (a revision this version does not know)."""
    from models.db import make_engine, upgrade

    path = tmp_path / "ahead.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    return f"sqlite:///{path}"


CASES: dict[str, tuple[dict[str, str], str, set[str] | None]] = {
    # name: (environment changes, the variable the message must name, processes (None = all))
    "database URL malformed": ({"DATABASE_URL": "notaurl"}, "DATABASE_URL", None),
    "database unreachable": ({"DATABASE_URL": UNREACHABLE_PG}, "DATABASE_URL", None),
    "database newer than the code": ({"DATABASE_URL": "AHEAD"}, "DATABASE_URL", None),
    "log level unknown": ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL", None),
    "redis URL malformed": ({"REDIS_URL": "notredis"}, "REDIS_URL", REDIS_USERS | {"web"}),
    "redis unreachable": ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL", REDIS_USERS),
    "broker URL malformed": ({"BROKER_DB_URL": "notaurl"}, "BROKER_DB_URL", BROKER_USERS),
    "broker unusable": ({"BROKER_DB_URL": UNUSABLE_BROKER}, "BROKER_DB_URL", BROKER_USERS),
    "supplier settings missing": ({"ZZY_BASE_URL": ""}, "ZZY_BASE_URL", None),
}


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int | None, str]:
    try:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out + "(still running after 30 s: it started despite the bad setting)"
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_bad_configuration_is_one_or_two_lines_and_a_non_zero_exit(
    case: str, tmp_path: Path
) -> None:
    changes, variable, only = CASES[case]
    changes = dict(changes)
    if changes.get("DATABASE_URL") == "AHEAD":
        changes["DATABASE_URL"] = database_ahead(tmp_path)
    values = {**GOOD, "DATABASE_URL": f"sqlite:///{tmp_path}/catalog.db", **changes}
    if "ZZY_BASE_URL" in changes and not changes["ZZY_BASE_URL"]:
        del values["ZZY_BASE_URL"]
    env = clean_env(**values)
    chosen = {
        name: command
        for name, command in processes().items()
        if (only is None or name in only)
        and not (variable.startswith("ZZY_") and name in SUPPLIER_FREE)
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(
            zip(chosen, pool.map(lambda c: run(c, env, tmp_path), chosen.values()), strict=True)
        )
    problems = []
    for name, (code, output) in results.items():
        lines = [line for line in output.splitlines() if line.strip()]
        if code in (None, 0) or len(lines) > 2 or "Traceback" in output or variable not in output:
            problems.append(f"{name}: exit {code}, {len(lines)} lines:\n{output[-1500:]}")
    assert not problems, "\n\n".join(problems)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = clean_env(**GOOD, DATABASE_URL=UNREACHABLE_PG)
    quiet = run([CLI, "status"], env, tmp_path)
    loud = run([CLI, "--debug", "status"], env, tmp_path)
    assert quiet[0] == 1 and "Traceback" not in quiet[1]
    assert loud[0] == 1 and "Traceback" in loud[1]
