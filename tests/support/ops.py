"""Shared helpers for the operations tests: free ports, a clean environment, waiting."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Settings a developer's shell may carry that would change what a test starts.
OURS = (
    "DATABASE_URL", "REDIS_URL", "BROKER_DB_URL", "LOG_LEVEL", "LOG_FORMAT", "CALLBACK_URL",
    "CATALOG_API_TOKEN", "CATALOG_API_ANONYMOUS", "ZZY_BASE_URL", "ZZY_PARTNER_ID",
    "ZZY_SIGN_KEY", "ZZY_ALLOW_HTTP", "PORT", "WEB_PORT", "API_PORT", "SANDBOX_PORT",
    "PROMETHEUS_MULTIPROC_DIR", "CATALOG_SYNC_DEBUG", "SUPPLIER_RATE_LIMIT",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This environment without the project's settings, the venv first on PATH, plus ``values``.

    Celery warns at length when started as root (CI runs as root): that warning is silenced
    here so line counts measure the project's own output.
    """
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "ignore:You're running the worker with superuser privileges"
    env.update(values)
    return env


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
