"""Query-string parsing for the read API. Every parser raises ``BadParameter`` with a message
a consumer can act on; the app turns it into a 400.

Decisions (also in the OpenAPI document):

* ``limit``: default 100, at most 1000, at least 1, for products and changes alike.
* ``cursor``: opaque to consumers; URL-safe base64 (no padding) of ``p:<last product_id>``.
* ``updated_since``: an ISO 8601 date-time with an offset (``2026-01-01T08:00:00+08:00`` or
  ``...Z``; a ``+`` that arrived as a space is accepted), or a bare date ``YYYY-MM-DD`` meaning
  midnight Asia/Shanghai. A date-time without an offset is rejected as ambiguous. Inclusive.
* calendar ``from``/``to``: ``YYYY-MM-DD``, inclusive; default today..today+price_window_days
  in Asia/Shanghai; ``from`` alone runs price_window_days on from it; ``to`` alone starts today;
  at most 366 days.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, time

from models.limits import INT64_MAX
from worker.supplier.contract import SUPPLIER_TZ

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_WAIT_S = 60
MAX_CALENDAR_DAYS = 366
MAX_ID = INT64_MAX

_INTEGER = re.compile(r"[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURSOR_PREFIX = "p:"


class BadParameter(ValueError):
    """A query parameter is malformed or out of range; the message names it."""


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    value = _parse_int("limit", raw)
    if not 1 <= value <= MAX_LIMIT:
        raise BadParameter(f"limit must be between 1 and {MAX_LIMIT}")
    return value


def parse_wait(raw: str | None) -> int:
    """Long-poll seconds, 0 (no wait) to ``MAX_WAIT_S``."""
    if raw is None:
        return 0
    value = _parse_int("wait", raw)
    if value > MAX_WAIT_S:
        raise BadParameter(f"wait must be between 0 and {MAX_WAIT_S}")
    return value


def parse_id(name: str, raw: str | None) -> int | None:
    """A non-negative 64-bit integer, or ``None`` when absent."""
    if raw is None:
        return None
    return _parse_int(name, raw)


def _parse_int(name: str, raw: str) -> int:
    if not _INTEGER.fullmatch(raw) or int(raw) > MAX_ID:
        raise BadParameter(f"{name} must be a non-negative integer below 2^63")
    return int(raw)


def parse_status(raw: str | None) -> int | None:
    if raw is None:
        return None
    statuses = {"on_shelf": 1, "off_shelf": 0}
    if raw not in statuses:
        raise BadParameter("status must be on_shelf or off_shelf")
    return statuses[raw]


def parse_authorized(raw: str | None) -> bool | None:
    """``true`` (the default), ``false``, or ``any``."""
    if raw is None:
        return True
    choices: dict[str, bool | None] = {"true": True, "false": False, "any": None}
    if raw not in choices:
        raise BadParameter("authorized must be true, false or any")
    return choices[raw]


def parse_bookable(raw: str | None) -> bool | None:
    """``true``: only days bookable now; ``false``: only days that are not; absent: all."""
    if raw is None:
        return None
    choices = {"true": True, "false": False}
    if raw not in choices:
        raise BadParameter("bookable must be true or false")
    return choices[raw]


def parse_updated_since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if _DATE.fullmatch(raw):
        value = datetime.combine(_parse_date("updated_since", raw), time(), SUPPLIER_TZ)
    else:
        # A literal "+" in a query string decodes to a space.
        text = re.sub(r" ([0-9]{2}:?[0-9]{2})$", r"+\1", raw)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise BadParameter(
                "updated_since must be an ISO 8601 date-time with an offset or a YYYY-MM-DD date"
            ) from None
    if value.tzinfo is None:
        raise BadParameter("updated_since needs an offset (such as Z or +08:00)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadParameter("updated_since is out of range") from None


def parse_date(name: str, raw: str | None) -> date | None:
    return None if raw is None else _parse_date(name, raw)


def _parse_date(name: str, raw: str) -> date:
    if not _DATE.fullmatch(raw):
        raise BadParameter(f"{name} must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(f"{name} is not a real date: {raw}") from None


def calendar_range(
    first: date | None, last: date | None, today: date, window_days: int
) -> tuple[date, date]:
    """Resolve the calendar's inclusive range from what was given."""
    if first is None and last is None:
        first, last = today, date.fromordinal(today.toordinal() + window_days)
    elif first is None:
        assert last is not None
        first = today if today <= last else last
    elif last is None:
        last = date.fromordinal(min(first.toordinal() + window_days, date.max.toordinal()))
    if last < first:
        raise BadParameter("to must not be before from")
    if (last - first).days + 1 > MAX_CALENDAR_DAYS:
        raise BadParameter(f"the calendar spans at most {MAX_CALENDAR_DAYS} days")
    return first, last


def encode_cursor(last_product_id: int) -> str:
    raw = f"{_CURSOR_PREFIX}{last_product_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadParameter("cursor is not one this API issued") from None
    key = text.removeprefix(_CURSOR_PREFIX)
    if key == text or not _INTEGER.fullmatch(key) or int(key) > MAX_ID:
        raise BadParameter("cursor is not one this API issued")
    return int(key)
