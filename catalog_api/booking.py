"""Until when a visit day can be booked (CONTRACT.md, "Booking lead time"). Pure functions.

A visit day D can be booked until (D - BookingDay days) at the product's BookingTime,
Asia/Shanghai; without a BookingTime, until the end of that day. BookingDay 0 means no lead
time. A product that sells by session (it has any session in the window) cannot be booked on a
priced day without a session.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from worker.supplier.contract import SUPPLIER_TZ

END_OF_DAY = time(23, 59, 59)


def parse_booking_time(text: str | None) -> time | None:
    """``HH:mm`` as stored; None when absent or not a time of day."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip()[:5], "%H:%M").time()
    except ValueError:
        return None


def bookable_until(
    day: date,
    booking_days: int,
    booking_time: time | None,
    *,
    sells_by_session: bool = False,
    has_session: bool = True,
) -> datetime | None:
    """The last moment (Asia/Shanghai) at which ``day`` can still be booked; None when never."""
    if sells_by_session and not has_session:
        return None
    last_day = day - timedelta(days=max(booking_days, 0))
    return datetime.combine(last_day, booking_time or END_OF_DAY, SUPPLIER_TZ)


def is_bookable(until: datetime | None, now: datetime) -> bool:
    """Whether a day whose deadline is ``until`` can be booked at ``now``."""
    return until is not None and now <= until
