"""Silent repricing: rate specs, hidden rates, Poisson times, and a sandbox repricing live."""

from __future__ import annotations

import datetime
import itertools
import random
import statistics
import time

import httpx
import pytest
from click.testing import CliRunner

from supplier_sandbox.cli import sandbox as sandbox_command
from supplier_sandbox.repricing import (
    RateModel,
    RateSpecError,
    Repricer,
    parse_reprice_rates,
    poisson_change_times,
)
from supplier_sandbox.server import SandboxConfig, start_sandbox
from supplier_sandbox.state import SandboxState
from tests.support.sandbox import PARTNER_ID, SIGN_KEY, TODAY
from worker.supplier.client import SupplierClient
from worker.supplier.payloads import PriceCalendar


@pytest.mark.parametrize(
    ("spec", "kind", "alpha", "mean_s"),
    [
        ("pareto:1.5,3600", "pareto", 1.5, 3600.0),
        (" Pareto: 2 , 60.5 ", "pareto", 2.0, 60.5),
        ("uniform:0.5", "uniform", None, 0.5),
        ("uniform:86400", "uniform", None, 86400.0),
    ],
)
def test_good_specs_parse(spec: str, kind: str, alpha: float | None, mean_s: float) -> None:
    model = parse_reprice_rates(spec)
    assert (model.kind, model.alpha, model.mean_s) == (kind, alpha, mean_s)
    assert model.spec == spec.strip()
    assert model.mean_rate == pytest.approx(1 / mean_s)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "unknown rate model"),
        ("pareto", "unknown rate model"),
        ("poisson:3600", "unknown rate model"),
        ("pareto:1.5", "two numbers"),
        ("pareto:1.5,60,7", "two numbers"),
        ("pareto:1,3600", "greater than 1"),
        ("pareto:0.5,3600", "greater than 1"),
        ("pareto:x,3600", "not a number"),
        ("pareto:1.5,-3", "positive"),
        ("uniform:", "one number"),
        ("uniform:1,2", "one number"),
        ("uniform:0", "positive"),
        ("uniform:nan", "finite"),
        ("uniform:inf", "finite"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(spec: str, says: str) -> None:
    with pytest.raises(RateSpecError, match=says):
        parse_reprice_rates(spec)


def test_cli_refuses_a_bad_spec_and_documents_the_options() -> None:
    runner = CliRunner()
    refused = runner.invoke(sandbox_command, ["--reprice-rates", "pareto:1,60", "--port", "0"])
    assert refused.exit_code == 2
    assert "--reprice-rates" in refused.output and "greater than 1" in refused.output
    helped = runner.invoke(sandbox_command, ["--help"])
    assert "--reprice-rates" in helped.output and "--reprice-seed" in helped.output


def test_rates_are_deterministic_and_independent_of_order() -> None:
    model = parse_reprice_rates("pareto:1.5,600")
    ids = list(range(10001, 10201))
    first = model.rates_for(ids, seed=3)
    shuffled = ids[:]
    random.Random(9).shuffle(shuffled)
    assert model.rates_for(shuffled, seed=3) == first
    assert model.rates_for(ids[:10], seed=3) == {pid: first[pid] for pid in ids[:10]}
    assert model.rates_for(ids, seed=4) != first
    assert min(first.values()) >= model.min_rate


def test_pareto_rates_have_the_requested_mean_and_a_heavy_tail() -> None:
    model = parse_reprice_rates("pareto:2.5,600")
    rates = list(model.rates_for(range(1, 40_001), seed=1).values())
    assert statistics.fmean(rates) == pytest.approx(1 / 600, rel=0.05)
    # Pareto type I: the median is x_m * 2**(1/alpha), well under the mean; the top is far above.
    assert statistics.median(rates) == pytest.approx(model.min_rate * 2 ** (1 / 2.5), rel=0.05)
    assert max(rates) > 10 / 600


def test_uniform_rates_are_all_the_same() -> None:
    model = parse_reprice_rates("uniform:30")
    assert model.rates_for([1, 2, 3], seed=1) == {1: 1 / 30, 2: 1 / 30, 3: 1 / 30}


@pytest.mark.parametrize("rate", [0.01, 0.5, 5.0])
def test_poisson_change_times_count_is_rate_times_duration(rate: float) -> None:
    duration = 20_000 / rate  # about 20,000 events: the count's sd is ~0.7%
    times = poisson_change_times(rate, 100.0, 100.0 + duration, random.Random(1))
    assert len(times) == pytest.approx(rate * duration, rel=0.03)
    assert times == sorted(times) and times[0] > 100.0 and times[-1] <= 100.0 + duration
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(1 / rate, rel=0.03)
    assert poisson_change_times(0.0, 0.0, 100.0, random.Random(1)) == []
    assert poisson_change_times(rate, 5.0, 5.0, random.Random(1)) == []


def test_one_change_moves_every_price_and_nothing_else() -> None:
    state = SandboxState(SandboxConfig(products=3, seed=7, today=TODAY))
    repricer = Repricer(state.catalog, RateModel(kind="uniform", mean_s=1.0), seed=1)
    product_id = state.catalog.authorized_ids()[0]
    before = state.catalog.calendar(product_id, None, None)
    version = state.catalog.product(product_id)["Version"]
    record = repricer.change(product_id)
    after = state.catalog.calendar(product_id, None, None)
    assert [d.to_json() for d in after] != [d.to_json() for d in before]
    assert {abs(a.sale_price - b.sale_price) for a, b in zip(after, before, strict=True)} == {1}
    assert state.catalog.product(product_id)["Version"] == version
    assert [c.product_id for c in repricer.changes()] == [product_id]
    assert repricer.changes(since=record.at) == []


def _calendar(client: SupplierClient, product_id: int) -> PriceCalendar:
    return client.get_price_calendar(product_id, TODAY, TODAY + datetime.timedelta(days=30))


def _version(client: SupplierClient, product_id: int) -> int:
    product = client.get_product(product_id)
    assert product is not None
    return product.version


def test_a_repricing_sandbox_changes_calendars_silently_over_http() -> None:
    config = SandboxConfig(
        products=4, seed=7, today=TODAY, reprice_rates="uniform:0.5", reprice_seed=2
    )
    started = time.time()
    with start_sandbox(config) as running:
        http = httpx.Client(base_url=running.url, timeout=10, trust_env=False)
        client = SupplierClient(http, partner_id=PARTNER_ID, sign_key=SIGN_KEY)
        admin = httpx.Client(base_url=running.url + "/_admin", timeout=10, trust_env=False)
        try:
            product_id = running.state.catalog.authorized_ids()[0]
            before, version = _calendar(client, product_id), _version(client, product_id)
            deadline = time.monotonic() + 10
            after = before
            while after == before and time.monotonic() < deadline:
                time.sleep(0.1)
                after = _calendar(client, product_id)
            assert after != before, "no repricing seen within 10 s at 2 changes/s"
            assert _version(client, product_id) == version
            assert running.state.callbacks.deliveries() == []  # no notice was sent

            view = admin.get("/reprices").json()
            assert view["spec"] == "uniform:0.5"
            assert set(view["rates"]) == {
                str(pid) for pid in running.state.catalog.authorized_ids()
            }
            assert set(view["rates"].values()) == {2.0}
            mine = [c for c in view["changes"] if c["product_id"] == product_id]
            assert mine and all(c["at"] >= started for c in mine)
            latest = max(c["at"] for c in view["changes"])
            assert admin.get("/reprices", params={"since": latest}).json()["changes"] == []
            assert admin.get("/reprices", params={"since": "soon"}).status_code == 400
        finally:
            http.close()
            admin.close()
    assert running.state.repricer is not None and not running.state.repricer.running


def test_without_the_option_nothing_reprices(admin: httpx.Client) -> None:
    assert admin.get("/reprices").json() == {"spec": None, "rates": {}, "changes": []}
