"""Lenient, case-insensitive reading of query strings and JSON bodies, as ASP.NET binds them."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from supplier_sandbox.envelope import Rejected


def lookup(source: Mapping[str, Any], name: str) -> Any:
    """The value under ``name``, matching keys case-insensitively; None when absent."""
    if name in source:
        return source[name]
    lowered = name.lower()
    for key, value in source.items():
        if key.lower() == lowered:
            return value
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def optional_int(value: Any, label: str) -> int | None:
    """An integer parameter, or None when absent; a bad value is refused."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise Rejected(f"参数{label}格式错误")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit() or len(text) > 18:
        raise Rejected(f"参数{label}格式错误")
    return int(text)


def required_int(value: Any, label: str) -> int:
    """An integer parameter that must be present."""
    number = optional_int(value, label)
    if number is None:
        raise Rejected(f"参数{label}不能为空")
    return number


def optional_str(value: Any) -> str | None:
    """A string parameter stripped, or None when absent or blank."""
    if _blank(value):
        return None
    return str(value).strip()


def required_str(value: Any, label: str) -> str:
    """A non-blank string parameter."""
    text = optional_str(value)
    if text is None:
        raise Rejected(f"参数{label}不能为空")
    return text


def required_date(value: Any, label: str) -> datetime.date:
    """A date as ``yyyy-MM-dd``, with or without a time part after it."""
    text = required_str(value, label)
    try:
        if len(text) > 10:
            return datetime.datetime.fromisoformat(text.replace("/", "-")).date()
        return datetime.date.fromisoformat(text.replace("/", "-"))
    except ValueError:
        raise Rejected(f"参数{label}日期格式错误，应为yyyy-MM-dd") from None


def optional_decimal(value: Any, label: str) -> Decimal | None:
    """A money amount, or None when absent."""
    if _blank(value) or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise Rejected(f"参数{label}格式错误") from None
    if not amount.is_finite() or amount < 0:
        raise Rejected(f"参数{label}格式错误")
    return amount.quantize(Decimal("0.01"))


def object_list(value: Any, label: str) -> list[Mapping[str, Any]]:
    """A list of JSON objects; absent is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise Rejected(f"参数{label}格式错误")
    return list(value)
