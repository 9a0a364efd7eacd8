"""Deterministic fake catalog: products, price rules and sessions from (seed, N, today)."""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from supplier_sandbox.pricing import OPEN_ENDED, RANGE, SPECIFIC_DATE, PriceRule
from supplier_sandbox.seats import SeatPlan, Session

FIRST_PRODUCT_ID = 10001
HORIZON_DAYS = 90

SCENIC_SPOTS = (
    "西湖风景区", "灵隐飞来峰", "千岛湖", "乌镇东栅", "乌镇西栅", "西塘古镇", "杭州宋城",
    "黄山风景区", "九寨沟", "张家界国家森林公园", "故宫博物院", "八达岭长城", "颐和园",
    "天坛公园", "上海野生动物园", "东方明珠", "拙政园", "周庄古镇", "中山陵", "峨眉山",
    "乐山大佛", "都江堰", "青城山", "黄果树瀑布", "丽江古城", "玉龙雪山", "泰山", "华山",
    "秦始皇兵马俑", "长隆野生动物世界", "鼓浪屿", "武夷山", "庐山", "三清山", "普陀山",
    "雁荡山", "横店影视城", "西溪湿地", "杭州动物园", "灵山大佛",
)  # fmt: skip

# (kind, adults, children, min age, max age)
TICKET_KINDS: tuple[tuple[str, int, int, int | None, int | None], ...] = (
    ("成人票", 1, 0, 18, 59),
    ("成人票", 1, 0, None, None),
    ("儿童票", 0, 1, 3, 14),
    ("老人票", 1, 0, 60, None),
    ("学生票", 1, 0, 6, 24),
    ("夜场票", 1, 0, None, None),
    ("双人套票", 2, 0, None, None),
    ("亲子票", 1, 1, None, None),
    ("家庭套票", 2, 1, None, None),
)

VARIANTS = (
    "",
    "",
    "",
    "（含往返索道）",
    "【早鸟特惠】",
    "（电子票扫码入园）",
    "【周末专享】",
    "（含讲解）",
)
SESSION_STARTS = ("09:00", "10:30", "13:00", "14:30", "16:00", "19:30")


@dataclass
class GeneratedProduct:
    """One product's payload, its price rules and its session plan (if timed)."""

    payload: dict[str, Any]
    rules: list[PriceRule]
    seat_plan: SeatPlan | None


@dataclass
class Catalog:
    """A whole generated catalog, ProductIds increasing."""

    products: list[GeneratedProduct] = field(default_factory=list)


def _cents(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-2)


def _add_minutes(hhmm: str, minutes: int) -> str:
    hours, mins = int(hhmm[:2]), int(hhmm[3:])
    total = min(hours * 60 + mins + minutes, 23 * 60 + 59)
    return f"{total // 60:02d}:{total % 60:02d}"


def _maybe(rng: random.Random, value: Any, chance_of_null: float = 0.2) -> Any:
    return None if rng.random() < chance_of_null else value


def _effective_fields(rng: random.Random, today: datetime.date) -> dict[str, Any]:
    mode = rng.choices((1, 2, 3, 4, 5), weights=(60, 10, 10, 10, 10))[0]
    begin: str | None = None
    end: str | None = None
    days = 1
    if mode == 2:
        days = rng.choice((7, 15, 30))
    elif mode == 3:
        days = 0
        end = f"{(today + datetime.timedelta(days=180)).isoformat()} 23:59:59"
    elif mode == 4:
        days = rng.choice((2, 3, 7))
    elif mode == 5:
        days = 0
        begin = f"{today.isoformat()} 00:00:00"
        end = f"{(today + datetime.timedelta(days=120)).isoformat()} 23:59:59"
    return {
        "EffectiveTimeMode": mode,
        "EffectiveTime": days,
        "BecomeEffectiveTime": _maybe(rng, rng.choice((0, 0, 1, 2)), 0.3),
        "BeginEffectiveTime": begin,
        "EndEffectiveTime": end,
    }


def _product_payload(rng: random.Random, product_id: int, today: datetime.date) -> dict[str, Any]:
    spot_index = rng.randrange(len(SCENIC_SPOTS))
    spot = SCENIC_SPOTS[spot_index]
    kind, adults, children, min_age, max_age = rng.choice(TICKET_KINDS)
    variant = rng.choice(VARIANTS)
    entrance_mode = 1 if rng.random() < 0.3 else 0
    is_ticket = 1 if rng.random() < 0.15 else 0
    refund_set = 1 if rng.random() < 0.7 else 0
    desc = (
        f"{spot}{kind}，{'一人一码，凭身份证入园' if entrance_mode else '多人一码，扫码入园'}。"
        f"{'未使用可免费退' if refund_set else '一经售出不退不换'}。"
    )
    payload: dict[str, Any] = {
        "ProductId": product_id,
        "Version": rng.choices((0, 1, 2, 3, 4, 5), weights=(40, 25, 15, 10, 6, 4))[0],
        "ProductCode": _maybe(rng, f"ZZY{product_id:08d}", 0.1),
        "IsTicket": is_ticket,
        "TicketGetAddress": f"{spot}游客中心售票窗口" if is_ticket else None,
        "ProductName": f"{spot}{kind}{variant}",
        "ProductDesc": _maybe(rng, desc, 0.15),
        "EntranceMode": entrance_mode,
        "ProductKind": kind,
        "AdultNumber": _maybe(rng, adults, 0.1),
        "ChildNumber": _maybe(rng, children, 0.1),
        "MaxNumberByOrder": rng.choice((0, 0, 5, 10, 20, 50)),
        "MaxNumberByMobile": _maybe(rng, rng.choice((0, 5, 10)), 0.3),
        "LimitDayByMobile": _maybe(rng, rng.choice((0, 1, 7)), 0.3),
        "MaxNumberByCardID": _maybe(rng, rng.choice((0, 1, 2)), 0.3),
        "LimitDayByCardID": _maybe(rng, rng.choice((0, 1, 30)), 0.3),
        "CustomerSet": 1 if entrance_mode else rng.choice((1, 2)),
        "TotoalStock": rng.choice((0, 0, 0, 500, 1000, 5000, 20000)),
        "ProductStatus": 0 if rng.random() < 0.05 else 1,
        "RefundSet": refund_set,
        "ScenicSpots": spot,
        "ScenicId": 2001 + spot_index,
        "OutId": f"SC{2001 + spot_index:06d}",
        "MinAge": min_age,
        "MaxAge": max_age,
        **_effective_fields(rng, today),
        "BookingTime": _maybe(rng, rng.choice(("23:59", "22:00", "18:00", "16:30")), 0.3),
    }
    return payload


def _rule(
    rng: random.Random,
    price_type: int,
    begin: datetime.date,
    end: datetime.date | None,
    sale_cents: int,
    stock_unlimited: bool,
) -> PriceRule:
    sale = _cents(sale_cents)
    return PriceRule(
        price_type=price_type,
        begin=begin,
        end=end,
        price=_cents(sale_cents * 85 // 100),
        sale_price=sale,
        market_price=_cents((sale_cents * 125 // 100) // 100 * 100),
        daily_stock=0 if stock_unlimited else rng.choice((50, 100, 200, 500, 1000, 2000)),
        booking_day=rng.choices((0, 1, 2), weights=(80, 15, 5))[0],
        blank_end_as_empty=end is None and rng.random() < 0.5,
    )


def _price_rules(rng: random.Random, today: datetime.date) -> list[PriceRule]:
    base = rng.randrange(30, 400) * 100 + rng.choice((0, 0, 50, 90))
    unlimited = rng.random() < 0.3
    rules: list[PriceRule] = []
    days = datetime.timedelta
    if rng.random() < 0.8:
        begin = today - days(days=rng.randrange(0, 60))
        rules.append(_rule(rng, OPEN_ENDED, begin, None, base, unlimited))
        if rng.random() < 0.2:  # a later open-ended rule: the narrower of the two
            later = today + days(days=rng.randrange(20, 70))
            rules.append(_rule(rng, OPEN_ENDED, later, None, base + 500, unlimited))
    for _ in range(rng.randrange(1, 3)):
        begin = today + days(days=rng.randrange(-10, 60))
        end = begin + days(days=rng.randrange(7, 45))
        rules.append(_rule(rng, RANGE, begin, end, base + rng.randrange(-10, 30) * 100, unlimited))
        if rng.random() < 0.35:  # a nested, narrower range
            inner = begin + days(days=rng.randrange(0, 5))
            rules.append(
                _rule(rng, RANGE, inner, inner + days(days=rng.randrange(1, 5)), base + 2000, False)
            )
    for _ in range(rng.randrange(0, 4)):
        day = today + days(days=rng.randrange(0, HORIZON_DAYS))
        rules.append(_rule(rng, SPECIFIC_DATE, day, day, base + rng.randrange(10, 60) * 100, False))
        if rng.random() < 0.15:  # the same date twice: the later rule wins
            rules.append(_rule(rng, SPECIFIC_DATE, day, day, base + 9900, unlimited))
    return rules


def _seat_plan(rng: random.Random, today: datetime.date) -> SeatPlan:
    count = rng.randrange(2, 5)
    starts = sorted(rng.sample(SESSION_STARTS, count))
    length = rng.choice((60, 90, 120))
    sessions = tuple(
        Session(start, _add_minutes(start, length), rng.choice((50, 100, 200, 300)))
        for start in starts
    )
    return SeatPlan(
        first_day=today,
        last_day=today + datetime.timedelta(days=HORIZON_DAYS - 1),
        sessions=sessions,
        closed_weekday=0 if rng.random() < 0.3 else None,
    )


def generate_product(rng: random.Random, product_id: int, today: datetime.date) -> GeneratedProduct:
    """One plausible product with its overlapping rules and, for about a fifth, sessions."""
    payload = _product_payload(rng, product_id, today)
    rules = _price_rules(rng, today)
    plan = _seat_plan(rng, today) if rng.random() < 0.2 else None
    return GeneratedProduct(payload=payload, rules=rules, seat_plan=plan)


def generate_catalog(seed: int, count: int, today: datetime.date) -> Catalog:
    """The same catalog for the same (seed, count, today), ProductIds increasing."""
    rng = random.Random(seed)
    catalog = Catalog()
    product_id = FIRST_PRODUCT_ID
    for _ in range(count):
        catalog.products.append(generate_product(rng, product_id, today))
        product_id += rng.randrange(1, 4)
    return catalog
