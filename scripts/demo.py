"""The whole loop on the embedded default (SQLite, no Redis, no PostgreSQL).

Starts the supplier sandbox on a free loopback port, runs a full sync, mutates the
supplier's catalog, runs an incremental sync that fetches only what changed, refreshes one
product the way a notification would, and prints the status. Then it starts the callback
receiver, a Celery worker on the server-less SQLite broker and the read API: the supplier
sends signed notifications, the worker applies them, and the read API shows the result.
Run it with ``make demo``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (WORK / f"{name}.log").open("w")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_until_up(client: httpx.Client, path: str) -> bool:
    for _ in range(150):
        try:
            if client.get(path).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def show(title: str, payload: Any) -> None:
    print(f"{title}:")
    print("  " + json.dumps(payload, ensure_ascii=False, indent=2).replace("\n", "\n  "))


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

        notifications(env, admin, ids)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        log.close()
        admin.close()
    return 0


def notifications(env: dict[str, str], admin: httpx.Client, ids: list[int]) -> None:
    """Callback receiver + worker + read API, all on the embedded default."""
    web_port, api_port = free_port(), free_port()
    env = {
        **env,
        "BROKER_DB_URL": f"sqlite:///{WORK / 'broker.db'}",
        "PRODUCT_NOTICE_COALESCE_S": "1",
        "CATALOG_API_ANONYMOUS": "true",  # a loopback demo; set CATALOG_API_TOKEN for real use
    }
    cli = str(BIN / "catalog-sync")
    processes = [
        start("web", [cli, "web", "--port", str(web_port)], env),
        start("api", [cli, "api", "--port", str(api_port)], env),
        start(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "worker.celery_app",
                "worker",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
            ],
            env,
        ),
    ]
    web = httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10)
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
    try:
        if not (wait_until_up(web, "/healthz") and wait_until_up(api, "/healthz")):
            print("the callback receiver or the read API did not start; see var/demo/*.log")
            return
        heading("6. The supplier notifies: a reprice and an off-shelf, signed callbacks")
        feed = api.get("/catalog/changes", params={"after": 0, "limit": 1000}).json()
        after = feed["next_after"]
        admin.post(
            "/_admin/settings", json={"callback_url": f"http://127.0.0.1:{web_port}/callbacks/zzy"}
        )
        repriced, off_shelf = ids[10], ids[11]
        admin.post(f"/_admin/products/{repriced}/reprice", json={"delta": "3.00", "notify": True})
        admin.post(f"/_admin/products/{off_shelf}/shelf", json={"on_shelf": False, "notify": True})
        print(
            f"sandbox repriced {repriced} (notice Status 3) and took {off_shelf} off shelf (Status 0)"
        )
        admin.post("/_admin/callbacks/wait", json={"timeout_s": 10})
        deliveries = admin.get("/_admin/callbacks").json()["deliveries"]
        for delivery in deliveries:
            print(
                f"  {delivery['service']} {delivery['body']} -> HTTP {delivery['last_status']} {(delivery['last_reply'] or '').strip()}"
            )
        wanted = {(repriced, "prices"), (off_shelf, "status")}
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while wanted and time.monotonic() < deadline:
            page = api.get("/catalog/changes", params={"after": after, "limit": 100}).json()
            for change in page["changes"]:
                seen.append(change)
                wanted.discard((change["product_id"], change["kind"]))
            after = page["next_after"]
            time.sleep(0.5)
        print("the worker applied them; the change feed now shows:")
        for change in seen:
            print(
                f"  seq {change['seq']}: product {change['product_id']} {change['kind']} (version {change['version']})"
            )
        if wanted:
            print(f"still waiting for {sorted(wanted)}; see var/demo/worker.log")
        print("$ catalog-sync inbox list", flush=True)
        subprocess.run([cli, "inbox", "list"], env=env, check=False)

        heading("7. The read API serves the local catalog to the distributor's own systems")
        product = api.get(f"/catalog/products/{repriced}").json()
        show(
            f"GET /catalog/products/{repriced} (abridged)",
            {
                k: product[k]
                for k in (
                    "product_id",
                    "product_name",
                    "version",
                    "status",
                    "lowest_sale_price",
                    "prices_refreshed_at",
                )
            },
        )
        calendar = api.get(f"/catalog/products/{repriced}/calendar").json()
        show(
            f"GET /catalog/products/{repriced}/calendar (first 2 of {len(calendar['days'])} days)",
            calendar["days"][:2],
        )
        listing = api.get("/catalog/products", params={"status": "on_shelf", "limit": 3}).json()
        print(
            f"GET /catalog/products?status=on_shelf&limit=3 -> {[p['product_id'] for p in listing['products']]}, "
            f"next_cursor={listing['next_cursor']!r}"
        )
        one_order(env, admin, api, ids)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        web.close()
        api.close()


ORDERABLE = {
    "ProductStatus": 1,
    "EntranceMode": 0,
    "CustomerSet": 2,
    "MaxNumberByOrder": 0,
    "MaxNumberByMobile": 0,
    "MaxNumberByCardID": 0,
    "MinAge": 0,
    "MaxAge": 0,
    "RefundSet": 1,
    "TotoalStock": 0,
    "BookingTime": None,
}


def order_cli(*args: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``catalog-sync order ...``, show its exit code, and return its --json answer."""
    print("$ catalog-sync order " + " ".join(args), flush=True)
    done = subprocess.run(
        [str(BIN / "catalog-sync"), "order", *args, "--json"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    order = answer.get("order", answer)
    print(
        f"  exit {done.returncode}: {answer.get('message', '')} -> status "
        f"{order.get('status')}, redeemed {order.get('redeemed_quantity')}, "
        f"refunded {order.get('refunded_quantity')}"
    )
    return answer


def wait_for_order(
    env: dict[str, str], origin: str, until: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll ``order show`` until the worker has applied the supplier's notice."""
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(
            [str(BIN / "catalog-sync"), "order", "show", origin, "--json"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        shown: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
        if until(shown) or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)


def one_order(env: dict[str, str], admin: httpx.Client, api: httpx.Client, ids: list[int]) -> None:
    """Place, pay, redeem and refund one order; the notices move the same ledger row."""
    heading("8. One order: checked, created, paid, redeemed at the gate, partly refunded")
    product_id = next(
        pid
        for pid in ids[12:]
        if not admin.get(f"/_admin/products/{pid}/seats").json().get("seats")
    )
    admin.post(f"/_admin/products/{product_id}/version", json={"changes": ORDERABLE})
    run("sync", "--product", str(product_id), env=env)
    calendar = api.get(f"/catalog/products/{product_id}/calendar").json()["days"]
    day = next(d for d in calendar if d["bookable_until"] and (d["stock"] or 9) >= 2)["date"]
    origin = f"DEMO-{int(time.time())}"
    booking = ["--product", str(product_id), "--date", day, "--quantity", "2"]
    contact = ["--contact", "张三,13812345678"]
    order_cli("verify", *booking, *contact, env=env)
    order_cli("create", *booking, *contact, "--origin-order-id", origin, env=env)
    paid = order_cli("pay", origin, env=env)
    order_id = paid["order"]["order_id"]
    wait_for_order(env, origin, lambda o: any(h["action"] == "ticket_notice" for h in o["history"]))
    print(f"the gate scans one ticket: POST /_admin/orders/{order_id}/redeem")
    admin.post(f"/_admin/orders/{order_id}/redeem", json={"count": 1})
    wait_for_order(env, origin, lambda o: o.get("redeemed_quantity") == 1)
    order_cli("refund", origin, "--count", "1", env=env)
    apply_id = admin.get("/_admin/refunds").json()["refunds"][-1]["apply_id"]
    print(f"the supplier approves it: POST /_admin/refunds/{apply_id}/review")
    admin.post(f"/_admin/refunds/{apply_id}/review", json={"approve": True})
    wait_for_order(env, origin, lambda o: o.get("refunded_quantity") == 1)
    print("$ catalog-sync order show " + origin, flush=True)
    subprocess.run([str(BIN / "catalog-sync"), "order", "show", origin], env=env, check=False)
    got = api.get(f"/orders/{origin}").json()
    show(
        f"GET /orders/{origin} (abridged)",
        {
            k: got.get(k)
            for k in (
                "order_id",
                "status",
                "quantity",
                "redeemed_quantity",
                "refunded_quantity",
                "unit_price",
                "vouchers",
            )
        },
    )
    sandbox_order = admin.get(f"/_admin/orders/{order_id}").json()["order"]
    print(
        f"the supplier's side: status {sandbox_order['status']}, pays accepted "
        f"{sandbox_order['pays_accepted']}, checked {sandbox_order['checked']}, "
        f"refunded {sandbox_order['refunded']}"
    )


if __name__ == "__main__":
    sys.exit(main())
