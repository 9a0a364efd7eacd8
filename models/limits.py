"""What the columns hold, as plain numbers: the schema and the parsers of incoming data both use
these, so a value the database would refuse is refused at the boundary first.
"""

from __future__ import annotations

from decimal import Decimal

# Integer and BigInteger columns.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Money: Numeric(MONEY_DIGITS, MONEY_SCALE), so below 10**10 to the cent.
MONEY_DIGITS, MONEY_SCALE = 12, 2
MONEY_LIMIT = Decimal(10) ** (MONEY_DIGITS - MONEY_SCALE)
CENT = Decimal(1).scaleb(-MONEY_SCALE)
# String column lengths.
SHORT_TEXT = 255  # codes, kinds, ids sent as text
NAME_TEXT = 500  # product and scenic-spot names
TIME_TEXT = 8  # a session's HH:mm:ss
DATETIME_TEXT = 32  # an informational date-time kept as sent
BOOKING_TIME_TEXT = 5  # HH:mm
HASH_TEXT = 64  # a sha256 in hex
ORDER_ID_TEXT = 64  # the distributor's OriginOrderId, a refund's RefundApplyNo
