"""A product's calendar, and ETags on the calendar and the product."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from models.catalog import DailyPrice, Product
from tests.support import builders as b


def test_calendar_defaults_to_the_price_window_from_today_in_shanghai(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 1)
    b.prices(arrange, 1, b.TODAY - timedelta(days=2), 40)
    arrange.commit()

    body = client.get("/catalog/products/1/calendar").json
    assert (body["from"], body["to"]) == ("2026-03-01", "2026-03-31")
    dates = [d["date"] for d in body["days"]]
    assert dates[0] == "2026-03-01"
    assert dates[-1] == "2026-03-31"
    assert len(dates) == 31


def test_today_follows_shanghai_not_utc(
    client: FlaskClient, arrange: Session, clock: object
) -> None:
    b.product(arrange, 1)
    arrange.commit()
    clock.now = clock.now.replace(hour=17)  # type: ignore[attr-defined]  # 01:00 next day in Shanghai

    assert client.get("/catalog/products/1/calendar").json["from"] == "2026-03-02"


def test_calendar_day_has_prices_stock_booking_days_and_sessions(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 1)
    day1, day2 = b.TODAY + timedelta(days=1), b.TODAY + timedelta(days=2)
    b.day_price(arrange, 1, day1, "95.00", price="80.5", market="120", stock=None, booking_days=2)
    b.day_price(arrange, 1, day2, "96.00", stock=7)
    b.timed_session(arrange, 1, day1, "14:00", "15:00", "S2", 30)
    b.timed_session(arrange, 1, day1, "09:00", "10:00", "S1", 20)
    arrange.commit()

    response = client.get("/catalog/products/1/calendar?from=2026-03-02&to=2026-03-03")
    assert response.status_code == 200
    body = response.json
    assert body["product_id"] == 1
    assert body["days"] == [
        {
            "date": "2026-03-02",
            "price": "80.50",
            "sale_price": "95.00",
            "market_price": "120.00",
            "stock": None,
            "booking_days": 2,
            # Two days ahead, at the product's BookingTime (17:30), Shanghai time.
            "bookable_until": "2026-02-28T17:30:00+08:00",
            "sessions": [
                {"start_time": "09:00", "end_time": "10:00", "seats_code": "S1", "seats_num": 20},
                {"start_time": "14:00", "end_time": "15:00", "seats_code": "S2", "seats_num": 30},
            ],
        },
        {
            "date": "2026-03-03",
            "price": "80.00",
            "sale_price": "96.00",
            "market_price": "120.00",
            "stock": 7,
            "booking_days": 0,
            # The product sells by session and this priced day has none: never bookable.
            "bookable_until": None,
            "sessions": [],
        },
    ]


def test_bookable_until_is_the_end_of_the_day_without_a_booking_time(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 1, booking_time=None)
    b.day_price(arrange, 1, b.TODAY, booking_days=0)
    b.day_price(arrange, 1, b.TODAY + timedelta(days=3), booking_days=1)
    arrange.commit()

    days = client.get("/catalog/products/1/calendar?from=2026-03-01&to=2026-03-04").json["days"]
    assert [d["bookable_until"] for d in days] == [
        "2026-03-01T23:59:59+08:00",
        "2026-03-03T23:59:59+08:00",
    ]


def test_bookable_filter_is_evaluated_at_request_time(
    client: FlaskClient, arrange: Session, clock: object
) -> None:
    b.product(arrange, 1)  # BookingTime 17:30; now is 12:00 in Shanghai on 2026-03-01
    b.day_price(arrange, 1, b.TODAY, booking_days=0)  # until today 17:30
    b.day_price(arrange, 1, b.TODAY + timedelta(days=1), booking_days=1)  # until today 17:30
    b.day_price(arrange, 1, b.TODAY + timedelta(days=2), booking_days=2)  # until today 17:30
    b.day_price(arrange, 1, b.TODAY + timedelta(days=3), booking_days=1)  # until tomorrow
    arrange.commit()
    url = "/catalog/products/1/calendar?from=2026-03-01&to=2026-03-04&bookable="

    assert [d["date"] for d in client.get(url + "true").json["days"]] == [
        "2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04",
    ]  # fmt: skip
    clock.now = clock.now.replace(hour=10)  # type: ignore[attr-defined]  # 18:00 in Shanghai
    assert [d["date"] for d in client.get(url + "true").json["days"]] == ["2026-03-04"]
    assert [d["date"] for d in client.get(url + "false").json["days"]] == [
        "2026-03-01", "2026-03-02", "2026-03-03",
    ]  # fmt: skip
    assert client.get(url + "yes").status_code == 400


def test_a_product_sold_by_session_is_not_bookable_on_a_day_without_one(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 1)
    b.day_price(arrange, 1, b.TODAY + timedelta(days=1))
    b.day_price(arrange, 1, b.TODAY + timedelta(days=2))
    b.timed_session(arrange, 1, b.TODAY + timedelta(days=2), "09:00", "10:00", "S1", 5)
    arrange.commit()

    body = client.get("/catalog/products/1/calendar?bookable=true").json
    assert [d["date"] for d in body["days"]] == ["2026-03-03"]


def test_calendar_range_is_inclusive_and_from_alone_runs_the_window(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 1)
    b.prices(arrange, 1, b.TODAY, 60)
    arrange.commit()

    one = client.get("/catalog/products/1/calendar?from=2026-03-05&to=2026-03-05").json
    assert [d["date"] for d in one["days"]] == ["2026-03-05"]
    later = client.get("/catalog/products/1/calendar?from=2026-03-10").json
    assert (later["from"], later["to"]) == ("2026-03-10", "2026-04-09")
    assert len(later["days"]) == 31
    until = client.get("/catalog/products/1/calendar?to=2026-03-03").json
    assert (until["from"], until["to"]) == ("2026-03-01", "2026-03-03")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?from=2026-3-1", "from"),
        ("?from=2026-02-30", "from"),
        ("?to=tomorrow", "to"),
        ("?from=2026-03-10&to=2026-03-09", "before"),
        ("?from=2026-01-01&to=2027-01-02", "366"),
    ],
)
def test_bad_calendar_ranges_are_400(
    client: FlaskClient, arrange: Session, query: str, words: str
) -> None:
    b.product(arrange, 1)
    arrange.commit()
    response = client.get(f"/catalog/products/1/calendar{query}")
    assert response.status_code == 400
    assert words in response.json["message"]


def test_calendar_of_unknown_product_is_404(client: FlaskClient) -> None:
    response = client.get("/catalog/products/5/calendar")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_a_full_year_is_allowed(client: FlaskClient, arrange: Session) -> None:
    b.product(arrange, 1)
    arrange.commit()
    response = client.get("/catalog/products/1/calendar?from=2026-01-01&to=2026-12-31")
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/catalog/products/1", "/catalog/products/1/calendar"])
def test_etag_answers_304_until_the_data_changes(
    client: FlaskClient, arrange: Session, path: str
) -> None:
    b.product(arrange, 1)
    b.day_price(arrange, 1, b.TODAY + timedelta(days=1), "90.00")
    arrange.commit()

    first = client.get(path)
    etag = first.headers["ETag"]
    assert first.status_code == 200
    assert etag

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200

    arrange.get(DailyPrice, (1, b.TODAY + timedelta(days=1))).sale_price = 85  # type: ignore[union-attr]
    arrange.commit()
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_product_etag_moves_with_a_product_edit(client: FlaskClient, arrange: Session) -> None:
    b.product(arrange, 1)
    arrange.commit()
    etag = client.get("/catalog/products/1").headers["ETag"]

    row = arrange.get(Product, 1)
    assert row is not None
    row.version, row.product_name = 2, "Renamed"
    arrange.commit()

    response = client.get("/catalog/products/1", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.json["product_name"] == "Renamed"
