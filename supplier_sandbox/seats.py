"""Timed sessions (场次, 1.1.2 ``ProductSeats``), kept as a daily plan and expanded on demand."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Session:
    """One session of the day: start and end as ``HH:mm`` and its capacity."""

    start: str
    end: str
    capacity: int


@dataclass(frozen=True)
class Seat:
    """One dated session as the supplier lists it."""

    product_id: int
    day: datetime.date
    start: str
    end: str
    code: str
    capacity: int

    def to_payload(self) -> dict[str, Any]:
        """The PascalCase ``ProductSeats`` item."""
        return {
            "Time": self.day.isoformat(),
            "SeatsStartTime": self.start,
            "SeatsEndTime": self.end,
            "SeatsCode": self.code,
            "SeatsNum": self.capacity,
        }


@dataclass(frozen=True)
class SeatPlan:
    """The same sessions every open day of [first_day, last_day]; a weekday may be closed."""

    first_day: datetime.date
    last_day: datetime.date
    sessions: tuple[Session, ...]
    closed_weekday: int | None = None  # date.weekday(): 0 is Monday

    def seats_between(
        self, product_id: int, start: datetime.date, end: datetime.date
    ) -> list[Seat]:
        """The dated sessions within [start, end], by day then start time."""
        seats: list[Seat] = []
        day = max(start, self.first_day)
        last = min(end, self.last_day)
        while day <= last:
            if day.weekday() != self.closed_weekday:
                stamp = day.strftime("%Y%m%d")
                for number, session in enumerate(self.sessions, start=1):
                    code = f"S{product_id}-{stamp}-{number:02d}"
                    seats.append(
                        Seat(product_id, day, session.start, session.end, code, session.capacity)
                    )
            day += datetime.timedelta(days=1)
        return seats
