"""The supplier's catalog as it stands: products, authorization, rules, sessions, corruption.

Payload dicts are replaced, never changed in place, so a reference handed out stays a
consistent snapshot after the lock is released.
"""

from __future__ import annotations

import datetime
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from supplier_sandbox.catalog import (
    FIRST_PRODUCT_ID,
    HORIZON_DAYS,
    GeneratedProduct,
    generate_catalog,
    generate_product,
)
from supplier_sandbox.oracle import CalendarDay, resolve_calendar, resolve_day
from supplier_sandbox.pricing import PriceRule, money, rule_from_payload
from supplier_sandbox.seats import Seat, SeatPlan

OFF_SHELF, ON_SHELF, DETAILS_CHANGED, PRICES_CHANGED = 0, 1, 2, 3
CORRUPTIONS = ("version", "missing_id")

Notify = Callable[[str, dict[str, Any]], None]


class UnknownEntity(LookupError):
    """An admin operation named a product, order or application the sandbox does not have."""


class CatalogStore:
    """Products and their prices; every method takes the shared lock."""

    def __init__(
        self,
        lock: threading.RLock,
        *,
        seed: int,
        count: int,
        today: datetime.date,
        notify: Notify,
        version_reset: bool = False,
    ) -> None:
        self._lock = lock
        # The version-reset quirk: a product authorized again comes back as new, at Version 0.
        self.version_reset = version_reset
        self._notify = notify
        self.today = today
        self._products: dict[int, dict[str, Any]] = {}
        self._rules: dict[int, list[PriceRule]] = {}
        self._seat_plans: dict[int, SeatPlan] = {}
        self._authorized: set[int] = set()
        self._corrupt: dict[int, str] = {}
        self._ordered: list[int] | None = None
        for generated in generate_catalog(seed, count, today).products:
            self._install(generated)
        self._rng = random.Random(f"more-products-{seed}")
        self._next_id = max(self._products, default=FIRST_PRODUCT_ID - 1) + 1
        self._next_front_id = min(self._products, default=FIRST_PRODUCT_ID) - 1

    # -- reading, as the supplier serves it --------------------------------------------------

    def page(self, page_index: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
        """One page of authorized products by ProductId (1-based), and the total count."""
        with self._lock:
            ordered = self._authorized_in_order()
            start = (page_index - 1) * page_size
            return [self._served(pid) for pid in ordered[start : start + page_size]], len(ordered)

    def page_sources(
        self, page_index: int, page_size: int
    ) -> tuple[list[tuple[int, Mapping[str, Any], str | None]], int]:
        """``page`` unbuilt: each product's id, payload (never changed in place: the object
        tells the version) and corruption; ``served_payload`` builds what is served."""
        with self._lock:
            ordered = self._authorized_in_order()
            start = (page_index - 1) * page_size
            return [
                (pid, self._products[pid], self._corrupt.get(pid))
                for pid in ordered[start : start + page_size]
            ], len(ordered)

    def served_product(self, product_id: int) -> dict[str, Any] | None:
        """The product as 1.1.1 ``productId=`` returns it, None when not authorized."""
        with self._lock:
            if product_id not in self._authorized:
                return None
            return self._served(product_id)

    def is_authorized(self, product_id: int) -> bool:
        """Whether the distributor may see and sell this product."""
        with self._lock:
            return product_id in self._authorized

    def price_window(
        self, product_id: int, start: datetime.date, end: datetime.date
    ) -> tuple[list[PriceRule], list[Seat]] | None:
        """Rules overlapping [start, end] in stored order and the sessions within it."""
        with self._lock:
            if product_id not in self._authorized:
                return None
            rules = [rule for rule in self._rules[product_id] if rule.overlaps(start, end)]
            plan = self._seat_plans.get(product_id)
        seats = plan.seats_between(product_id, start, end) if plan else []
        return rules, seats

    # -- truth, for tests ---------------------------------------------------------------------

    def authorized_ids(self) -> list[int]:
        """Authorized ProductIds in the order the supplier pages them."""
        with self._lock:
            return list(self._authorized_in_order())

    def true_products(self) -> list[dict[str, Any]]:
        """Uncorrupted payloads of every authorized product, by ProductId."""
        with self._lock:
            return [dict(self._products[pid]) for pid in self._authorized_in_order()]

    def product(self, product_id: int) -> dict[str, Any]:
        """The true payload of any known product, authorized or not."""
        with self._lock:
            return dict(self._known(product_id))

    def rules(self, product_id: int) -> list[PriceRule]:
        """All of a product's rules, in the order the supplier lists them."""
        with self._lock:
            self._known(product_id)
            return list(self._rules[product_id])

    def calendar(
        self, product_id: int, start: datetime.date | None = None, end: datetime.date | None = None
    ) -> list[CalendarDay]:
        """The oracle's resolved days (default: the next 90 days from today)."""
        start = start or self.today
        end = end or self.today + datetime.timedelta(days=HORIZON_DAYS - 1)
        return resolve_calendar(self.rules(product_id), start, end)

    def day(self, product_id: int, day: datetime.date) -> CalendarDay | None:
        """The resolved figures of one day, None when no rule covers it."""
        return resolve_day(self.rules(product_id), day)

    def seats(
        self, product_id: int, start: datetime.date | None = None, end: datetime.date | None = None
    ) -> list[Seat]:
        """The product's dated sessions in the window (default: the next 90 days)."""
        start = start or self.today
        end = end or self.today + datetime.timedelta(days=HORIZON_DAYS - 1)
        with self._lock:
            self._known(product_id)
            plan = self._seat_plans.get(product_id)
        return plan.seats_between(product_id, start, end) if plan else []

    def has_seats(self, product_id: int) -> bool:
        """Whether the product is sold by timed session."""
        with self._lock:
            return product_id in self._seat_plans

    # -- mutations, as the admin interface offers them ----------------------------------------

    def bump_version(
        self, product_id: int, changes: Mapping[str, Any] | None = None, *, notify: bool = False
    ) -> dict[str, Any]:
        """Edit a product: apply field changes and bump Version (notify status 2)."""
        changes = dict(changes or {})
        if "ProductId" in changes:
            raise ValueError("ProductId cannot be changed")
        with self._lock:
            current = self._known(product_id)
            updated = {**current, **changes, "Version": _as_int(current.get("Version")) + 1}
            self._products[product_id] = updated
            if notify:
                self._product_notify(product_id, DETAILS_CHANGED)
            return dict(updated)

    def reprice(
        self,
        product_id: int,
        *,
        rules: Sequence[Mapping[str, Any]] | None = None,
        delta: Decimal | str | float | None = None,
        daily_stock: int | None = None,
        notify: bool = False,
    ) -> list[PriceRule]:
        """Change prices or stock without touching Version (notify status 3).

        ``rules`` replaces every rule; otherwise ``delta`` is added to each rule's three
        prices and ``daily_stock`` replaces each rule's DailyStock.
        """
        parsed = [rule_from_payload(item) for item in rules] if rules is not None else None
        step = money(delta) if delta is not None else None
        with self._lock:
            self._known(product_id)
            if parsed is not None:
                new_rules = parsed
            else:
                new_rules = [_adjusted(rule, step, daily_stock) for rule in self._rules[product_id]]
            self._rules[product_id] = new_rules
            if notify:
                self._product_notify(product_id, PRICES_CHANGED)
            return list(new_rules)

    def set_shelf(
        self, product_id: int, on_shelf: bool, *, notify: bool = False, bump: bool = True
    ) -> dict[str, Any]:
        """Put a product on or off shelf (notify status 1 or 0); an edit, so Version moves."""
        with self._lock:
            current = self._known(product_id)
            updated = {**current, "ProductStatus": 1 if on_shelf else 0}
            if bump:
                updated["Version"] = _as_int(current.get("Version")) + 1
            self._products[product_id] = updated
            if notify:
                self._product_notify(product_id, ON_SHELF if on_shelf else OFF_SHELF)
            return dict(updated)

    def deauthorize(self, product_id: int, *, notify: bool = False) -> None:
        """Withdraw the product from this distributor (notify status 0)."""
        with self._lock:
            self._known(product_id)
            self._authorized.discard(product_id)
            self._ordered = None
            if notify:
                self._product_notify(product_id, OFF_SHELF)

    def reauthorize(self, product_id: int, *, notify: bool = False) -> None:
        """Grant a withdrawn product again (notify status 1); at Version 0 under version-reset."""
        with self._lock:
            current = self._known(product_id)
            if self.version_reset and product_id not in self._authorized:
                self._products[product_id] = {**current, "Version": 0}
            self._authorized.add(product_id)
            self._ordered = None
            if notify:
                self._product_notify(product_id, ON_SHELF)

    def add_products(self, count: int, *, notify: bool = False) -> list[int]:
        """New authorized products after every existing one (notify status 1 each)."""
        with self._lock:
            added: list[int] = []
            for _ in range(count):
                product_id = self._next_id
                self._next_id += 1
                self._install(generate_product(self._rng, product_id, self.today), version=0)
                added.append(product_id)
                if notify:
                    self._product_notify(product_id, ON_SHELF)
            return added

    def corrupt(self, product_id: int, mode: str = "version") -> None:
        """Serve the product invalid until uncorrupted: Version "abc" or ProductId missing."""
        if mode not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {mode!r}; expected one of {CORRUPTIONS}")
        with self._lock:
            self._known(product_id)
            self._corrupt[product_id] = mode

    def uncorrupt(self, product_id: int) -> None:
        """Serve the product's true payload again."""
        with self._lock:
            self._corrupt.pop(product_id, None)

    def drift_insert(self) -> int:
        """A brand-new authorized product that sorts first, pushing every other one back."""
        with self._lock:
            product_id = self._next_front_id
            if product_id < 1:
                raise ValueError("no ProductId left below the catalog")
            self._next_front_id -= 1
            self._install(generate_product(self._rng, product_id, self.today), version=0)
            return product_id

    def drift_remove(self) -> int | None:
        """Deauthorize the first product in order, pulling every other one forward."""
        with self._lock:
            ordered = self._authorized_in_order()
            if not ordered:
                return None
            first = ordered[0]
            self.deauthorize(first)
            return first

    # -- internals ----------------------------------------------------------------------------

    def _install(self, generated: GeneratedProduct, version: int | None = None) -> None:
        payload = generated.payload
        if version is not None:
            payload = {**payload, "Version": version}
        product_id = int(payload["ProductId"])
        self._products[product_id] = payload
        self._rules[product_id] = generated.rules
        if generated.seat_plan is not None:
            self._seat_plans[product_id] = generated.seat_plan
        self._authorized.add(product_id)
        self._ordered = None

    def _known(self, product_id: int) -> dict[str, Any]:
        payload = self._products.get(product_id)
        if payload is None:
            raise UnknownEntity(f"no product {product_id}")
        return payload

    def _authorized_in_order(self) -> list[int]:
        if self._ordered is None:
            self._ordered = sorted(self._authorized)
        return self._ordered

    def _served(self, product_id: int) -> dict[str, Any]:
        return served_payload(self._products[product_id], self._corrupt.get(product_id))

    def _product_notify(self, product_id: int, status: int) -> None:
        self._notify("order_product_notify", {"ProductId": product_id, "Status": status})


def served_payload(payload: Mapping[str, Any], corruption: str | None) -> dict[str, Any]:
    """A product as served: a copy of its payload, corrupted as the admin asked."""
    served = dict(payload)
    if corruption == "version":
        served["Version"] = "abc"
    elif corruption == "missing_id":
        del served["ProductId"]
    return served


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _adjusted(rule: PriceRule, step: Decimal | None, daily_stock: int | None) -> PriceRule:
    if step is not None:
        rule = replace(
            rule,
            price=rule.price + step,
            sale_price=rule.sale_price + step,
            market_price=rule.market_price + step,
        )
    if daily_stock is not None:
        rule = replace(rule, daily_stock=daily_stock)
    return rule
