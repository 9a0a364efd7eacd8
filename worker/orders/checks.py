"""Checks an order must pass, from the synced catalog, before the supplier is called. Pure.

Each refusal names its rule (``Refusal.rule``), so the CLI, the API and the tests can tell
them apart. The facts come from the local catalog (``ProductFacts``, ``DayFacts``,
``SessionFacts``) and from our own ledger (``prior_by_holder``: tickets already sold to a
mobile or ID number inside the product's limit window).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from catalog_api.booking import bookable_until

RULES = (
    "quantity",
    "product_known",
    "product_authorized",
    "product_on_shelf",
    "price_on_date",
    "bookable_until",
    "max_number_by_order",
    "day_stock",
    "visitor_ids",
    "session",
    "session_stock",
    "age",
    "max_number_by_mobile",
    "max_number_by_card_id",
)


class Holder(BaseModel):
    """A contact or visitor as given by the caller (personal data: never logged unmasked)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=64)
    mobile: str = Field(min_length=1, max_length=32, repr=False)
    id_number: str | None = Field(default=None, max_length=32, repr=False)


class OrderRequest(BaseModel):
    """What a distributor asks to book."""

    model_config = ConfigDict(frozen=True)

    origin_order_id: str = Field(min_length=1, max_length=64)
    product_id: int
    visit_date: date
    quantity: int
    contact: Holder
    visitors: tuple[Holder, ...] = ()
    session_code: str | None = None
    remark: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True)
class ProductFacts:
    product_id: int
    is_authorized: bool
    product_status: int
    product_name: str
    entrance_mode: int | None
    customer_set: int | None
    max_number_by_order: int | None
    max_number_by_mobile: int | None
    limit_day_by_mobile: int | None
    max_number_by_card_id: int | None
    limit_day_by_card_id: int | None
    min_age: int | None
    max_age: int | None
    booking_time: time | None
    sells_by_session: bool


@dataclass(frozen=True)
class DayFacts:
    day: date
    price: Decimal  # the distributor's cost: the UnitPrice paid
    sale_price: Decimal
    market_price: Decimal
    stock: int | None  # None = unlimited
    booking_days: int


@dataclass(frozen=True)
class SessionFacts:
    code: str
    start: str
    end: str
    capacity: int


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str


@dataclass(frozen=True)
class Approved:
    """The facts the order is sold on: kept as the order's snapshot."""

    product: ProductFacts
    day: DayFacts
    session: SessionFacts | None
    bookable_until: datetime


@dataclass(frozen=True)
class Facts:
    product: ProductFacts | None
    day: DayFacts | None
    sessions: Sequence[SessionFacts] = ()
    # tickets already sold, per holder key, inside the product's limit windows
    prior_by_holder: Mapping[str, int] = field(default_factory=dict)


def holder_key(kind: str, value: str) -> str:
    """A digest standing for a mobile or ID number, so limits can be counted without it."""
    digits = "".join(value.split()).upper()
    return hashlib.sha256(f"catalog-sync:{kind}:{digits}".encode()).hexdigest()[:32]


def needs_visitor_ids(product: ProductFacts) -> bool:
    """One visitor with an ID number per ticket: one code per visitor, or visitor info needed."""
    return product.entrance_mode == 1 or product.customer_set == 1


def age_on(id_number: str, day: date) -> int | None:
    """Age on ``day`` from an 18-character resident ID number (birth date at 7..14)."""
    text = id_number.strip()
    if len(text) != 18 or not text[:17].isdigit():
        return None
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_order(request: OrderRequest, facts: Facts, now: datetime) -> Approved | Refusal:
    """Every rule the synced catalog knows, in order; the first broken one refuses."""
    if request.quantity < 1:
        return Refusal("quantity", "quantity must be at least 1")
    product = facts.product
    if product is None:
        return Refusal("product_known", f"product {request.product_id} is not in the catalog")
    if not product.is_authorized:
        return Refusal("product_authorized", f"product {product.product_id} is not authorized")
    if product.product_status != 1:
        return Refusal("product_on_shelf", f"product {product.product_id} is off shelf")
    day = facts.day
    if day is None:
        return Refusal("price_on_date", f"no price for {request.visit_date.isoformat()}")
    session = _chosen_session(request, facts.sessions)
    until = bookable_until(
        day.day,
        day.booking_days,
        product.booking_time,
        sells_by_session=product.sells_by_session,
        has_session=bool(facts.sessions),
    )
    if until is None:
        return Refusal("session", f"no session on {day.day.isoformat()}; the product sells by it")
    if now > until:
        return Refusal(
            "bookable_until",
            f"{day.day.isoformat()} could be booked until {until.isoformat()} (BookingDay "
            f"{day.booking_days}, BookingTime {product.booking_time or 'none'})",
        )
    limit = product.max_number_by_order or 0
    if limit and request.quantity > limit:
        return Refusal("max_number_by_order", f"at most {limit} tickets per order")
    if day.stock is not None and request.quantity > day.stock:
        return Refusal("day_stock", f"{day.stock} tickets left on {day.day.isoformat()}")
    if needs_visitor_ids(product):
        if len(request.visitors) != request.quantity:
            return Refusal(
                "visitor_ids",
                f"one visitor per ticket: {request.quantity} ticket(s), "
                f"{len(request.visitors)} visitor(s)",
            )
        if any(not (v.id_number or "").strip() for v in request.visitors):
            return Refusal("visitor_ids", "every visitor needs an ID number for this product")
    if product.sells_by_session:
        if request.session_code is None:
            return Refusal("session", "this product sells by session: choose one with --session")
        if session is None:
            return Refusal("session", f"no session {request.session_code} on {day.day.isoformat()}")
        if session.capacity and request.quantity > session.capacity:
            return Refusal("session_stock", f"{session.capacity} seats in that session")
    elif request.session_code is not None:
        return Refusal("session", "this product does not sell by session")
    refusal = _ages(request, product)
    if refusal is not None:
        return refusal
    refusal = _holder_limits(request, product, facts.prior_by_holder)
    if refusal is not None:
        return refusal
    return Approved(product, day, session, until)


def _chosen_session(request: OrderRequest, sessions: Sequence[SessionFacts]) -> SessionFacts | None:
    if request.session_code is None:
        return None
    return next((s for s in sessions if s.code == request.session_code), None)


def _ages(request: OrderRequest, product: ProductFacts) -> Refusal | None:
    if not product.min_age and not product.max_age:
        return None
    for visitor in request.visitors:
        age = age_on(visitor.id_number or "", request.visit_date)
        if age is None:
            continue  # no readable birth date: the supplier's Verify decides
        if product.min_age and age < product.min_age:
            return Refusal("age", f"visitors must be at least {product.min_age}")
        if product.max_age and age > product.max_age:
            return Refusal("age", f"visitors must be at most {product.max_age}")
    return None


def holder_keys(request: OrderRequest) -> list[str]:
    """The keys this order counts against: each distinct mobile and ID number in it."""
    keys: list[str] = []
    for person in (request.contact, *request.visitors):
        for kind, value in (("mobile", person.mobile), ("id", person.id_number or "")):
            if value.strip():
                key = holder_key(kind, value)
                if key not in keys:
                    keys.append(key)
    return keys


def _holder_limits(
    request: OrderRequest, product: ProductFacts, prior: Mapping[str, int]
) -> Refusal | None:
    limit = product.max_number_by_mobile or 0
    if limit:
        mobiles = {holder_key("mobile", p.mobile) for p in (request.contact, *request.visitors)}
        for key in mobiles:
            if prior.get(key, 0) + request.quantity > limit:
                return Refusal(
                    "max_number_by_mobile",
                    f"at most {limit} tickets per mobile within "
                    f"{product.limit_day_by_mobile or 1} day(s)",
                )
    limit = product.max_number_by_card_id or 0
    if limit:
        for visitor in (request.contact, *request.visitors):
            if not (visitor.id_number or "").strip():
                continue
            key = holder_key("id", visitor.id_number or "")
            if prior.get(key, 0) + request.quantity > limit:
                return Refusal(
                    "max_number_by_card_id",
                    f"at most {limit} tickets per ID number within "
                    f"{product.limit_day_by_card_id or 1} day(s)",
                )
    return None
