"""One sandbox's whole world behind one lock: catalog, orders, traffic and callbacks.

The parts are reachable as attributes so tests can do in-process what the admin routes do:
``state.catalog`` (products, prices, truth), ``state.orders`` (the order lifecycle),
``state.traffic`` (request counts, faults), ``state.callbacks`` (the delivery log),
``state.repricer`` (silent repricing, when configured; started by the server, not here),
``state.served`` (each product's JSON as pages serve it, until it changes).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from supplier_sandbox.config import SandboxConfig, supplier_today
from supplier_sandbox.notifier import Notifier
from supplier_sandbox.order_book import OrderBook
from supplier_sandbox.quirks import fault_kinds
from supplier_sandbox.repricing import Repricer, parse_reprice_rates
from supplier_sandbox.served import ServedTexts
from supplier_sandbox.store import CatalogStore
from supplier_sandbox.traffic import Traffic

SETTINGS = ("latency_ms", "fail_rate", "max_page_size", "callback_url", "auto_issue", "camel_case")


class SandboxState:
    """Thread-safe state of one fake supplier; every part shares the same RLock."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = dataclasses.replace(config or SandboxConfig())
        if "camel-case" in self.config.quirks:
            self.config.camel_case = True
        self.lock = threading.RLock()
        self.today = self.config.today or supplier_today()
        self.callbacks = Notifier(
            self.lock,
            partner_id=self.config.partner_id,
            sign_key=self.config.sign_key,
            attempts=self.config.callback_attempts,
            backoff_s=self.config.callback_backoff_s,
            timeout_s=self.config.callback_timeout_s,
            quirks=self.config.quirks,
        )
        self.catalog = CatalogStore(
            self.lock,
            seed=self.config.seed,
            count=self.config.products,
            today=self.today,
            notify=self.notify,
            version_reset="version-reset" in self.config.quirks,
        )
        self.served = ServedTexts()
        self.orders = OrderBook(
            self.lock,
            self.catalog,
            partner_id=self.config.partner_id,
            seed=self.config.seed,
            notify=self.notify,
        )
        self.orders.auto_issue = self.config.auto_issue
        self.traffic = Traffic(
            self.lock,
            seed=self.config.seed,
            latency_ms=self.config.latency_ms,
            fail_rate=self.config.fail_rate,
            fault_kinds=fault_kinds(self.config.quirks),
        )
        self.repricer: Repricer | None = None
        if self.config.reprice_rates:
            self.repricer = Repricer(
                self.catalog,
                parse_reprice_rates(self.config.reprice_rates),
                seed=self.config.reprice_seed,
            )

    @property
    def partner_id(self) -> int:
        """The distributor this supplier serves."""
        return self.config.partner_id

    def notify(self, service: str, body: dict[str, Any]) -> None:
        """Send a callback to the configured URL (logged only when none is set)."""
        self.callbacks.enqueue(self.config.callback_url, service, body)

    def settings(self) -> dict[str, Any]:
        """The settings the admin interface may change, as they stand."""
        with self.lock:
            return {
                "latency_ms": self.traffic.latency_ms,
                "fail_rate": self.traffic.fail_rate,
                "max_page_size": self.config.max_page_size,
                "callback_url": self.config.callback_url,
                "auto_issue": self.orders.auto_issue,
                "camel_case": self.config.camel_case,
                "today": self.today.isoformat(),
                "quirks": sorted(self.config.quirks),
                "partner_id": self.config.partner_id,
                "reprice_rates": self.config.reprice_rates,
            }

    def update_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change runtime settings; raises ValueError on an unknown name or a bad value."""
        unknown = set(changes) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {list(SETTINGS)}")
        with self.lock:
            if "latency_ms" in changes:
                self.traffic.latency_ms = max(0.0, float(changes["latency_ms"]))
            if "fail_rate" in changes:
                rate = float(changes["fail_rate"])
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("fail_rate must be between 0 and 1")
                self.traffic.fail_rate = rate
            if "max_page_size" in changes:
                size = int(changes["max_page_size"])
                if size < 1:
                    raise ValueError("max_page_size must be positive")
                self.config.max_page_size = size
            if "callback_url" in changes:
                url = changes["callback_url"]
                self.config.callback_url = str(url) if url else None
            if "auto_issue" in changes:
                self.orders.auto_issue = bool(changes["auto_issue"])
            if "camel_case" in changes:
                self.config.camel_case = bool(changes["camel_case"])
            return self.settings()

    def close(self) -> None:
        """Stop repricing, release held requests and stop the callback worker."""
        if self.repricer is not None:
            self.repricer.stop()
        self.traffic.release_holds()
        self.callbacks.close()
