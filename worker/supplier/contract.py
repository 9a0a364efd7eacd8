"""What the supplier's contract fixes beyond the payload shapes: its time zone and its "today".

Calendar dates in requests, answers and callbacks are days in Asia/Shanghai. China keeps no
daylight saving time, so a fixed offset is exact and needs no tz database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

SUPPLIER_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def supplier_today(now: datetime | None = None) -> date:
    """Today's date where the supplier is."""
    return (now or datetime.now(UTC)).astimezone(SUPPLIER_TZ).date()
