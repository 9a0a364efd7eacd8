"""The supplier's JSON envelope, its LogIds, and the refusal that becomes ``IsSuccess: false``."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

_DOTNET_EPOCH_OFFSET_S = 62_135_596_800  # seconds from 0001-01-01 to 1970-01-01


class Rejected(Exception):
    """A business or parameter refusal: answered with HTTP 200 and ``IsSuccess: false``."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def envelope(data: Any, *, code: int, ok: bool, message: str, log_id: str) -> dict[str, Any]:
    """The five-key response every supplier endpoint answers with."""
    return {"Data": data, "Code": code, "IsSuccess": ok, "LogId": log_id, "Message": message}


def make_log_id(now: datetime.datetime, sequence: int) -> str:
    """A 38-digit LogId shaped like the document's: .NET ticks, local timestamp, sequence."""
    ticks = (int(now.timestamp()) + _DOTNET_EPOCH_OFFSET_S) * 10_000_000 + now.microsecond * 10
    stamp = now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"
    return f"{ticks:018d}{stamp}{sequence % 1000:03d}"


def dotnet_camel(name: str) -> str:
    """System.Text.Json's camelCase policy: ``IDCardNo`` → ``idCardNo``, ``LogId`` → ``logId``."""
    chars = list(name)
    for index, char in enumerate(chars):
        if index == 1 and not char.isupper():
            break
        has_next = index + 1 < len(chars)
        if index > 0 and has_next and not chars[index + 1].isupper():
            break
        chars[index] = char.lower()
    return "".join(chars)


def camelize(value: Any) -> Any:
    """The same JSON with every object key camelCased, as a flipped .NET setting would emit."""
    if isinstance(value, dict):
        return {dotnet_camel(str(key)): camelize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camelize(item) for item in value]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # 2-place amounts round-trip exactly through a JSON number
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> str:
    """Compact UTF-8 JSON with money as numbers, Chinese unescaped as .NET sends it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_encode)
