"""Settings of one sandbox instance: who the distributor is, how big the catalog, how flaky."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

SUPPLIER_TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class SandboxConfig:
    """Everything a sandbox is started with; the admin interface can change some later."""

    partner_id: int = 9258
    sign_key: str = "zzy-sandbox-signkey"
    products: int = 50
    seed: int = 1
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    max_page_size: int = 100
    callback_url: str | None = None
    today: datetime.date | None = None  # default: today in Asia/Shanghai
    camel_case: bool = (
        False  # emit camelCase keys (a .NET setting flip), for client-tolerance tests
    )
    auto_issue: bool = True  # Pay issues tickets at once; False leaves orders awaiting tickets
    callback_attempts: int = 5
    callback_backoff_s: float = 0.05  # first retry delay; doubles on each further attempt
    callback_timeout_s: float = 5.0
    tolerance_ms: int = 300_000
    log_requests: bool = False
    quirks: frozenset[str] = field(default_factory=frozenset)  # see supplier_sandbox.quirks
    reprice_rates: str | None = None  # silent Poisson repricing; see supplier_sandbox.repricing
    reprice_seed: int = 1  # seed of the hidden per-product rates


def supplier_today() -> datetime.date:
    """Today's date where the supplier is (a calendar date means Asia/Shanghai)."""
    return datetime.datetime.now(SUPPLIER_TZ).date()
