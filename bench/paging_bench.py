"""Paging a large sandbox catalog through the supplier client: requests and wall time.

    python bench/paging_bench.py [--products 10000] [--latency-ms 0 50] [--page-size 100]

Prints one row per latency: pages requested against the minimum ceil(N / page size), the time,
and products per second. Ratios come from one run; the machine is shared, so compare rows,
not runs.
"""

from __future__ import annotations

import math
import time

import click
import httpx

from supplier_sandbox.server import SandboxConfig, start_sandbox
from worker.supplier.client import PRODUCTS_PATH, SupplierClient


@click.command()
@click.option("--products", default=10_000, show_default=True)
@click.option(
    "--latency-ms", "latencies", multiple=True, type=float, default=[0.0, 50.0], show_default=True
)
@click.option("--page-size", default=100, show_default=True)
@click.option("--max-page-size", default=100, show_default=True, help="the sandbox's cap")
def main(products: int, latencies: list[float], page_size: int, max_page_size: int) -> None:
    config = SandboxConfig(products=products, seed=1, max_page_size=max_page_size)
    with start_sandbox(config) as sandbox:
        minimum = math.ceil(products / min(page_size, max_page_size))
        print(
            f"catalog: {products} products, page size asked {page_size}, supplier cap {max_page_size}"
        )
        print(
            f"{'latency':>8} {'requests':>9} {'minimum':>8} {'ratio':>6} {'seconds':>8} {'products/s':>11}"
        )
        for latency in latencies:
            sandbox.state.update_settings({"latency_ms": latency})
            sandbox.state.traffic.reset_stats()
            http = httpx.Client(base_url=sandbox.url, timeout=30)
            with SupplierClient(
                http, partner_id=config.partner_id, sign_key=config.sign_key, page_size=page_size
            ) as client:
                started = time.perf_counter()
                seen = sum(len(page.products) for page in client.iter_product_pages())
                seconds = time.perf_counter() - started
            requests = sandbox.state.traffic.stats()["by_path"].get(PRODUCTS_PATH, 0)
            assert seen == products, f"paged {seen} of {products}"
            print(
                f"{latency:>6.0f}ms {requests:>9} {minimum:>8} {requests / minimum:>6.2f} "
                f"{seconds:>8.2f} {seen / seconds:>11.0f}"
            )


if __name__ == "__main__":
    main()
