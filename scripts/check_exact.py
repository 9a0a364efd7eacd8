"""Compare the local catalog with a running sandbox's truth: products, calendar days, sessions.

Usage: python scripts/check_exact.py SANDBOX_URL DATABASE_URL [WINDOW_DAYS]

The truth comes from the sandbox's admin interface (its catalog and its own oracle), never from
the project's parser, so this checks the whole pull path end to end. Prints the counts compared
and every mismatch; exits 1 on any mismatch.
"""

from __future__ import annotations

import datetime
import sys
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from models.catalog import DailyPrice, Product, TimedSession
from models.db import make_engine, make_session_factory


def main(sandbox_url: str, database_url: str, window_days: int = 60) -> int:
    http = httpx.Client(base_url=sandbox_url, timeout=30)
    settings = http.get("/_admin/settings").json()
    today = datetime.date.fromisoformat(settings["today"])
    last = today + datetime.timedelta(days=window_days - 1)
    truth = {p["ProductId"]: p for p in http.get("/_admin/products").json()["products"]}
    sessions = make_session_factory(make_engine(database_url))
    problems: list[str] = []
    days_checked = seats_checked = 0
    with sessions() as session:
        rows = {
            r.product_id: r for r in session.scalars(select(Product).where(Product.is_authorized))
        }
        if sorted(rows) != sorted(truth):
            problems.append(f"authorized ids differ: {sorted(set(rows) ^ set(truth))[:10]}")
        for pid, payload in truth.items():
            row = rows.get(pid)
            if row is None:
                continue
            for column, key in (
                ("version", "Version"),
                ("product_name", "ProductName"),
                ("product_status", "ProductStatus"),
                ("total_stock", "TotoalStock"),
            ):
                if getattr(row, column) != payload[key]:
                    problems.append(f"{pid} {column}: {getattr(row, column)!r} != {payload[key]!r}")
            query = {"from": today.isoformat(), "to": last.isoformat()}
            oracle = http.get(f"/_admin/products/{pid}/calendar", params=query).json()["days"]
            held = (
                session.execute(
                    select(DailyPrice).where(DailyPrice.product_id == pid).order_by(DailyPrice.day)
                )
                .scalars()
                .all()
            )
            want = [
                (
                    d["date"],
                    Decimal(str(d["sale_price"])).quantize(Decimal("0.01")),
                    Decimal(str(d["price"])).quantize(Decimal("0.01")),
                    d["stock"],
                    d["booking_days"],
                )
                for d in oracle
            ]
            have = [
                (d.day.isoformat(), d.sale_price, d.price, d.stock, d.booking_days) for d in held
            ]
            days_checked += len(want)
            if want != have:
                problems.append(f"{pid} calendar differs ({len(have)} held, {len(want)} true)")
            seats = http.get(f"/_admin/products/{pid}/seats", params=query).json()["seats"]
            held_seats = session.execute(
                select(TimedSession.day, TimedSession.seats_code, TimedSession.seats_num).where(
                    TimedSession.product_id == pid
                )
            ).all()
            seats_checked += len(seats)
            if sorted((s["Time"], s["SeatsCode"], s["SeatsNum"]) for s in seats) != sorted(
                (d.isoformat(), code, num) for d, code, num in held_seats
            ):
                problems.append(f"{pid} sessions differ")
    print(f"products {len(truth)}, days {days_checked}, sessions {seats_checked}: "
          f"{'exact' if not problems else f'{len(problems)} mismatches'}")  # fmt: skip
    for problem in problems[:50]:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    arguments: list[Any] = sys.argv[1:]
    sys.exit(main(arguments[0], arguments[1], *(int(a) for a in arguments[2:3])))
