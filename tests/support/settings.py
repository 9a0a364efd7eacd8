"""Test settings and the services tests find (PostgreSQL, Redis), with the sandbox's credentials."""

from __future__ import annotations

import os
from typing import Any

import pytest

from worker.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SANDBOX_PARTNER_ID = 9258
SANDBOX_SIGN_KEY = "zzy-sandbox-signkey"


def service_missing(what: str, error: Exception) -> None:
    """Skip locally, fail under CI."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message + " (CI=true: tests needing it must not skip)", pytrace=False)
    pytest.skip(message)


def make_settings(
    sandbox_url: str, database_url: str = "sqlite:///:memory:", **overrides: Any
) -> Settings:
    """Settings for a test: the sandbox's partner and key, fast retries, no environment read."""
    values: dict[str, Any] = {
        "zzy_base_url": sandbox_url,
        "zzy_partner_id": SANDBOX_PARTNER_ID,
        "zzy_sign_key": SANDBOX_SIGN_KEY,
        "database_url": database_url,
        "http_timeout_s": 2.0,
        "supplier_rate_limit": 1000.0,
        "supplier_burst": 100,
        "redis_url": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
