"""Price rules as the supplier sends them in 1.1.2 ``DailyPriceStock`` (CONTRACT.md 1.1.2)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

RANGE = 1
SPECIFIC_DATE = 2
OPEN_ENDED = 3
PRICE_TYPES = (RANGE, SPECIFIC_DATE, OPEN_ENDED)


@dataclass(frozen=True)
class PriceRule:
    """One price rule; ``end`` is None only for an open-ended rule (type 3)."""

    price_type: int
    begin: datetime.date
    end: datetime.date | None
    price: Decimal
    sale_price: Decimal
    market_price: Decimal
    daily_stock: int
    booking_day: int
    blank_end_as_empty: bool = False  # the supplier sends an open end as "" on some products

    def overlaps(self, start: datetime.date, end: datetime.date) -> bool:
        """Whether any day of [start, end] falls under this rule, as 1.1.2 filters them."""
        if self.begin > end:
            return False
        return self.price_type == OPEN_ENDED or self.end is None or self.end >= start

    def to_payload(self) -> dict[str, Any]:
        """The PascalCase ``DailyPriceStock`` item, money left as Decimal for the encoder."""
        if self.end is not None:
            end_text: str | None = self.end.isoformat()
        else:
            end_text = "" if self.blank_end_as_empty else None
        return {
            "DailyStock": self.daily_stock,
            "MarketPrice": self.market_price,
            "Price": self.price,
            "SalePrice": self.sale_price,
            "BookingDay": self.booking_day,
            "BeginTime": self.begin.isoformat(),
            "EndTime": end_text,
            "PriceType": self.price_type,
        }


def parse_day(text: object) -> datetime.date | None:
    """A supplier date (``yyyy-MM-dd``, optionally with a time part); None when blank."""
    if text is None:
        return None
    raw = str(text).strip()
    if not raw:
        return None
    return datetime.date.fromisoformat(raw[:10])


def money(value: object) -> Decimal:
    """A money amount as a 2-place Decimal, from a number or a string."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def rule_from_payload(item: Mapping[str, Any]) -> PriceRule:
    """Rebuild a rule from its payload (admin repricing, the oracle on foreign data)."""
    begin = parse_day(item["BeginTime"])
    if begin is None:
        raise ValueError("BeginTime is required")
    end = parse_day(item.get("EndTime"))
    price_type = int(item["PriceType"])
    if price_type != OPEN_ENDED and end is None:
        raise ValueError("EndTime is required unless PriceType is 3")
    return PriceRule(
        price_type=price_type,
        begin=begin,
        end=end,
        price=money(item["Price"]),
        sale_price=money(item["SalePrice"]),
        market_price=money(item["MarketPrice"]),
        daily_stock=int(item.get("DailyStock") or 0),
        booking_day=int(item.get("BookingDay") or 0),
        blank_end_as_empty=item.get("EndTime") == "",
    )
