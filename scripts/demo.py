"""The whole sync loop on the embedded default (SQLite, no Redis, no PostgreSQL).

Starts the supplier sandbox on a free loopback port, runs a full sync, mutates the
supplier's catalog, runs an incremental sync that fetches only what changed, refreshes one
product the way a notification would, and prints the status. Run it with ``make demo``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "demo"
BIN = Path(sys.executable).parent
PRODUCTS = int(os.environ.get("DEMO_PRODUCTS", "300"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(*args: str, env: dict[str, str]) -> None:
    print("$ catalog-sync " + " ".join(args), flush=True)
    subprocess.run([str(BIN / "catalog-sync"), *args], env=env, check=True)


def requests_by_path(admin: httpx.Client) -> dict[str, Any]:
    stats = admin.get("/_admin/stats").json()
    return stats.get("data", stats)


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ZZY_BASE_URL": url,
        "ZZY_PARTNER_ID": "9258",
        "ZZY_SIGN_KEY": "zzy-sandbox-signkey",
        "DATABASE_URL": f"sqlite:///{WORK / 'catalog.db'}",
    }
    env.pop("REDIS_URL", None)

    heading(f"Supplier sandbox with {PRODUCTS} products on {url}")
    log = (WORK / "sandbox.log").open("w")
    sandbox = subprocess.Popen(
        [
            str(BIN / "catalog-sync"),
            "sandbox",
            "--port",
            str(port),
            "--products",
            str(PRODUCTS),
            "--seed",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    admin = httpx.Client(base_url=url, timeout=10)
    try:
        for _ in range(100):
            try:
                admin.get("/_admin/stats").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            print("the sandbox did not start; see var/demo/sandbox.log")
            return 1

        heading("1. Full sync: every product page, then one price call per product")
        run("sync", env=env)
        print("supplier saw:", requests_by_path(admin))

        heading("2. The supplier changes its catalog")
        ids = admin.get("/_admin/products").json()
        ids = [p["ProductId"] for p in ids.get("data", ids).get("products", ids.get("data", ids))]
        admin.post(
            f"/_admin/products/{ids[0]}/version", json={"changes": {"ProductName": "西湖夜游·新版"}}
        )
        admin.post(f"/_admin/products/{ids[1]}/version", json={})
        admin.post(f"/_admin/products/{ids[2]}/reprice", json={"delta": "5.00"})
        admin.post(f"/_admin/products/{ids[3]}/shelf", json={"on_shelf": False})
        admin.post(f"/_admin/products/{ids[4]}/deauthorize", json={})
        added = admin.post("/_admin/products/add", json={"count": 3}).json()
        print(f"bumped {ids[0]} and {ids[1]}, repriced {ids[2]} without a version bump,")
        print(f"took {ids[3]} off shelf, deauthorized {ids[4]}, added {added.get('data', added)}")
        admin.post("/_admin/stats/reset")

        heading("3. Incremental sync: pages, plus prices only for what changed")
        run("sync", "--prices", "changed", env=env)
        print("supplier saw:", requests_by_path(admin))

        heading(f"4. A notification-style refresh of the repriced product {ids[2]}")
        admin.post("/_admin/stats/reset")
        run("sync", "--product", str(ids[2]), env=env)
        print("supplier saw:", requests_by_path(admin))

        heading("5. Status")
        run("status", env=env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        log.close()
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
