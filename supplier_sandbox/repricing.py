"""Silent repricing: each product's prices move as a Poisson process with a hidden rate.

A real supplier changes prices without bumping ``Version`` and sometimes without a price notice.
``--reprice-rates`` makes the sandbox do the same, so a refresh policy can be measured against a
known truth. Each product gets its own rate (changes per second), drawn once from a rate model:

* ``uniform:MEAN_S``: every product changes at rate ``1 / MEAN_S``.
* ``pareto:ALPHA,MEAN_S``: rates are Pareto type I with shape ``ALPHA`` (> 1) and scale
  ``x_m = (ALPHA - 1) / (ALPHA * MEAN_S)``, so the *mean rate* over products is ``1 / MEAN_S``;
  most products change rarely (the minimum rate is ``x_m``) and a few change very often
  (heavy tail; the smaller ``ALPHA``, the heavier). ``MEAN_S`` is therefore the reciprocal of the
  mean rate, not the mean interval of a typical product (which is longer).

The pure parts (``parse_reprice_rates``, ``RateModel.rates_for``, ``poisson_change_times``) serve
a simulator with its own clock; ``Repricer`` is the real-time thread a running sandbox uses.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from supplier_sandbox.store import CatalogStore

log = logging.getLogger(__name__)

SPEC_HELP = "pareto:ALPHA,MEAN_S (ALPHA > 1, heavy-tailed rates of mean 1/MEAN_S) or uniform:MEAN_S"
PRICE_STEP = Decimal("1.00")  # a repricing moves every rule's prices by one yuan, up or down
LOWEST_PRICE = Decimal("2.00")  # below this, a step always goes up, so prices stay positive
MAX_RECORDED_CHANGES = 200_000  # the oldest are forgotten first


class RateSpecError(ValueError):
    """A ``--reprice-rates`` spec that cannot be understood; the message says why."""


@dataclass(frozen=True)
class RateModel:
    """How per-product change rates are drawn; ``spec`` is the text it was parsed from."""

    kind: Literal["pareto", "uniform"]
    mean_s: float
    alpha: float | None = None
    spec: str = ""

    @property
    def mean_rate(self) -> float:
        """The expected rate of a product drawn from the model, changes per second."""
        return 1.0 / self.mean_s

    @property
    def min_rate(self) -> float:
        """The smallest rate the model draws (Pareto's scale; the only rate for uniform)."""
        if self.kind == "uniform" or self.alpha is None:
            return self.mean_rate
        return (self.alpha - 1.0) / (self.alpha * self.mean_s)

    def rate_for(self, product_id: int, seed: int) -> float:
        """One product's rate: from its own seeded stream, so neither order nor set matters."""
        if self.kind == "uniform" or self.alpha is None:
            return self.mean_rate
        uniform = 1.0 - random.Random(f"reprice-rate:{seed}:{product_id}").random()  # (0, 1]
        return self.min_rate / math.pow(uniform, 1.0 / self.alpha)

    def rates_for(self, product_ids: Sequence[int], seed: int) -> dict[int, float]:
        """Changes per second for each product; the same for the same seed, in any order."""
        return {product_id: self.rate_for(product_id, seed) for product_id in product_ids}


def _number(text: str, name: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RateSpecError(f"{name} in {spec!r} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise RateSpecError(f"{name} in {spec!r} must be finite")
    return value


def _positive(mean_s: float, spec: str) -> None:
    if mean_s <= 0.0:
        raise RateSpecError(f"MEAN_S must be positive: {spec!r}")


def parse_reprice_rates(spec: str) -> RateModel:
    """``pareto:ALPHA,MEAN_S`` or ``uniform:MEAN_S``; raises RateSpecError when neither."""
    kind, sep, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    args = [part.strip() for part in rest.split(",")] if rest.strip() else []
    if not sep or kind not in ("pareto", "uniform"):
        raise RateSpecError(f"unknown rate model in {spec!r}; expected {SPEC_HELP}")
    if kind == "uniform":
        if len(args) != 1:
            raise RateSpecError(f"uniform takes one number, MEAN_S: {spec!r}")
        mean_s = _number(args[0], "MEAN_S", spec)
        _positive(mean_s, spec)
        return RateModel(kind="uniform", mean_s=mean_s, spec=spec.strip())
    if len(args) != 2:
        raise RateSpecError(f"pareto takes two numbers, ALPHA,MEAN_S: {spec!r}")
    alpha = _number(args[0], "ALPHA", spec)
    mean_s = _number(args[1], "MEAN_S", spec)
    if alpha <= 1.0:
        raise RateSpecError(
            f"ALPHA must be greater than 1 (else the mean rate is infinite): {spec!r}"
        )
    _positive(mean_s, spec)
    return RateModel(kind="pareto", mean_s=mean_s, alpha=alpha, spec=spec.strip())


def poisson_change_times(
    rate: float, start_s: float, end_s: float, rng: random.Random
) -> list[float]:
    """The times in ``(start_s, end_s]`` at which a rate-``rate`` Poisson process fires."""
    times: list[float] = []
    if rate <= 0.0 or end_s <= start_s:
        return times
    at = start_s + rng.expovariate(rate)
    while at <= end_s:
        times.append(at)
        at += rng.expovariate(rate)
    return times


@dataclass(frozen=True)
class RepriceChange:
    """One silent repricing: which product, and when (monotonic and epoch seconds)."""

    product_id: int
    monotonic: float
    at: float

    def to_json(self) -> dict[str, Any]:
        """As the admin interface lists it."""
        return {"product_id": self.product_id, "at": self.at}


class Repricer:
    """A daemon thread that reprices each product at its Poisson times, without a notice.

    Each change goes through ``CatalogStore.reprice`` (the admin's reprice path, notify off):
    every rule's prices move by ``PRICE_STEP``, so every priced day of the calendar changes
    while ``Version`` stays. Products added after start are not repriced.
    """

    def __init__(
        self,
        catalog: CatalogStore,
        model: RateModel,
        *,
        seed: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.model = model
        self.seed = seed
        self.rates = model.rates_for(catalog.authorized_ids(), seed)
        self._clock = clock
        self._rng = random.Random(f"reprice-times:{seed}")
        self._lock = threading.Lock()
        self._changes: deque[RepriceChange] = deque(maxlen=MAX_RECORDED_CHANGES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin repricing on a daemon thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sandbox-repricer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop repricing and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def changes(self, since: float | None = None) -> list[RepriceChange]:
        """Recorded changes, oldest first; only those after epoch ``since`` when given."""
        with self._lock:
            items = list(self._changes)
        return items if since is None else [item for item in items if item.at > since]

    def snapshot(self, since: float | None = None) -> dict[str, Any]:
        """The admin view: spec, hidden rates by product, changes."""
        return {
            "spec": self.model.spec,
            "rates": {str(product_id): rate for product_id, rate in self.rates.items()},
            "changes": [item.to_json() for item in self.changes(since)],
        }

    def change(self, product_id: int) -> RepriceChange:
        """Reprice one product now and record it (the thread's step; callable from tests)."""
        rules = self.catalog.rules(product_id)
        lowest = min(
            (min(rule.price, rule.sale_price, rule.market_price) for rule in rules),
            default=LOWEST_PRICE,
        )
        down = self._rng.random() < 0.5 and lowest - PRICE_STEP >= LOWEST_PRICE
        self.catalog.reprice(product_id, delta=-PRICE_STEP if down else PRICE_STEP, notify=False)
        record = RepriceChange(product_id, self._clock(), time.time())
        with self._lock:
            self._changes.append(record)
        return record

    def _run(self) -> None:
        start = self._clock()
        due = [
            (start + self._rng.expovariate(rate), product_id)
            for product_id, rate in self.rates.items()
            if rate > 0.0
        ]
        heapq.heapify(due)
        while due and not self._stop.is_set():
            at, product_id = due[0]
            delay = at - self._clock()
            if delay > 0.0:
                self._stop.wait(delay)
                continue
            heapq.heappop(due)
            try:
                self.change(product_id)
            except Exception:  # one product's failure must not end everyone's repricing
                log.exception("repricing product %s failed", product_id)
            # From the due time, not from now: a late step does not thin the process.
            heapq.heappush(due, (at + self._rng.expovariate(self.rates[product_id]), product_id))
