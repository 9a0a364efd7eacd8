"""The building blocks of the supplier's payload models: lenient parsers and bounded types.

Keys in any case, nulls and empty strings for optional values, money as ``Decimal``, the
contract's several date formats, negative counts read as 0 (logged as drift). Incoming values
are bounded by the columns that store them (``models.limits``): a value the database would
refuse fails validation here. ``SupplierModel`` (incoming) and ``OutgoingModel`` (requests)
are the two bases.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from models.limits import (
    CENT,
    DATETIME_TEXT,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    MONEY_LIMIT,
)

log = logging.getLogger(__name__)

# yyyy-MM-dd, yyyy/M/d, with an optional time (space or T), fraction and offset.
_DATE_TIME = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def parse_supplier_datetime(text: str) -> datetime:
    """Any date form the contract allows, as written (a date alone is midnight); ValueError else."""
    match = _DATE_TIME.match(text.strip())
    if match is None:
        raise ValueError(f"not a supplier date: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    tz = None
    if offset:
        if offset == "Z":
            tz = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=tz,
    )


def _parse_date(value: Any) -> Any:
    value = blank_to_none(value)
    if isinstance(value, str):
        if len(value) == 10 and value[4] == "-" == value[7] and value.isascii():
            # yyyy-MM-dd, the form nearly every date comes in: the quick parse, same answer.
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        return parse_supplier_datetime(value).date()
    if isinstance(value, datetime):
        return value.date()
    return value


def _parse_datetime(value: Any) -> Any:
    value = blank_to_none(value)
    if isinstance(value, str):
        return parse_supplier_datetime(value)
    return value


_negatives: ContextVar[list[int] | None] = ContextVar("negatives", default=None)


@contextmanager
def negatives_read_as_zero() -> Iterator[list[int]]:
    """Collect the negative values read as 0 while validating, so the caller logs them once,
    naming the product, instead of one line per value."""
    found: list[int] = []
    token = _negatives.set(found)
    try:
        yield found
    finally:
        _negatives.reset(token)


def _not_negative(value: Any) -> Any:
    """A negative stock or count means nothing the contract defines: read as 0, logged as drift."""
    value = blank_to_none(value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        return value
    if number < 0 and not isinstance(value, bool):
        sink = _negatives.get()
        if sink is None:
            log.warning("drift: negative stock or count %s read as 0", number)
        else:
            sink.append(number)
        return 0
    return value


def _informational(
    fallback: Any,
) -> WrapValidator:
    """A field the sync can do without: when it does not parse, ``fallback(value)`` instead."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except (ValidationError, ValueError, TypeError):
            return fallback(value)

    return WrapValidator(validate)


def _none(_: Any) -> None:
    return None


def _raw_text(value: Any) -> str | None:
    """An unparsed date kept as the text it came as (clipped to its column)."""
    if value is None:
        return None
    text = str(value).strip()
    return text[:DATETIME_TEXT] or None


def _storable_datetime(value: datetime | None) -> datetime | None:
    """Fits the ``String(32)`` column its ISO 8601 text is kept in."""
    if value is not None and len(value.isoformat()) > DATETIME_TEXT:
        raise ValueError(f"date and time longer than {DATETIME_TEXT} characters as ISO 8601")
    return value


def _parse_time_of_day(value: Any) -> Any:
    value = blank_to_none(value)
    if isinstance(value, str):
        return datetime.strptime(value.strip()[:5], "%H:%M").time()
    return value


def _money(value: Any) -> Any:
    value = blank_to_none(value)
    if isinstance(value, float):
        # A float here means someone parsed JSON without parse_float=Decimal; repr is exact enough
        # for 2-decimal prices, Decimal(float) would not be.
        return Decimal(repr(value))
    return value


def _storable_money(value: Decimal) -> Decimal:
    """Fits ``Numeric(12, 2)``: finite, under 1e10, at most two decimals once normalized."""
    if not value.is_finite() or abs(value) >= MONEY_LIMIT:
        raise ValueError(f"money must be finite and below {MONEY_LIMIT:,}")
    if value != value.quantize(CENT):
        raise ValueError("money must have at most two decimals")
    return value


def _to_str(value: Any) -> Any:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


OptDate = Annotated[date | None, BeforeValidator(_parse_date)]
ReqDate = Annotated[date, BeforeValidator(_parse_date)]
OptDateTime = Annotated[
    datetime | None, BeforeValidator(_parse_datetime), AfterValidator(_storable_datetime)
]
OptTime = Annotated[time | None, BeforeValidator(_parse_time_of_day)]
Money = Annotated[Decimal, BeforeValidator(_money), AfterValidator(_storable_money)]
# Unbounded: an order's PayMoney must be read back whatever it is, after the payment is made.
OptMoney = Annotated[Decimal | None, BeforeValidator(_money)]
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
OptInt = Annotated[int | None, BeforeValidator(blank_to_none)]
OptInt32 = Annotated[Int32 | None, BeforeValidator(blank_to_none)]
OptInt64 = Annotated[Int64 | None, BeforeValidator(blank_to_none)]
OptStr = Annotated[str | None, BeforeValidator(_to_str)]
Str = Annotated[str, BeforeValidator(_to_str)]
# Informational product fields: never a reason to quarantine.
InfoInt32 = Annotated[OptInt32, _informational(_none)]
InfoInt64 = Annotated[OptInt64, _informational(_none)]
InfoStr = Annotated[OptStr, _informational(_none)]
InfoTime = Annotated[OptTime, _informational(_none)]
# A date-time that does not parse keeps its text (the column holds text).
InfoDateTime = Annotated[
    datetime | str | None,
    BeforeValidator(_parse_datetime),
    AfterValidator(_storable_datetime),
    _informational(_raw_text),
]
Count = Annotated[Int32, BeforeValidator(_not_negative)]
OptCount = Annotated[Int32 | None, BeforeValidator(_not_negative), _informational(_none)]


class SupplierModel(BaseModel):
    """Incoming model: keys matched case-insensitively against the PascalCase aliases."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")
    _extra_aliases: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        canonical, exact = _key_folding(cls)
        if data.keys() <= exact:
            return data  # every key already as the contract spells it: nothing to fold
        folded: dict[str, Any] = {}
        for key, value in data.items():
            target = canonical.get(str(key).lower(), str(key))
            if target not in folded or folded[target] is None:
                folded[target] = value
        return folded


# Per model: lowercased key -> alias, and the aliases that fold to themselves. Built once per
# class (model fields never change after creation); payloads arrive by the hundred per page.
_FOLDINGS: dict[type[SupplierModel], tuple[dict[str, str], frozenset[str]]] = {}


def _key_folding(model: type[SupplierModel]) -> tuple[dict[str, str], frozenset[str]]:
    folding = _FOLDINGS.get(model)
    if folding is None:
        canonical: dict[str, str] = {}
        for name, field in model.model_fields.items():
            alias = field.alias or name
            canonical[alias.lower()] = alias
            canonical[name.lower()] = alias
        canonical.update({k.lower(): v for k, v in model._extra_aliases.items()})
        exact = frozenset(key for key in canonical.values() if canonical.get(key.lower()) == key)
        folding = _FOLDINGS[model] = (canonical, exact)
    return folding


class OutgoingModel(BaseModel):
    """Outgoing request body: built with snake_case names, sent with the contract's keys."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
