"""Logging with a masking filter: sign keys, ID card numbers and mobiles never leave unmasked."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

# Digits as typed by people: ASCII or full-width; groups may be split by a space or a dash.
_D = "[0-9\uff10-\uff19]"
_SEP = "[ \u3000\\-\u2010-\u2015\u2212\uff0d]?"
# Mobiles: 11 digits from 1[3-9], optionally after +86 / 0086 / 86, whole or as 3-4-4 groups.
_MOBILE = re.compile(
    rf"(?<![0-9\uff10-\uff19])((?:(?:[+\uff0b]|00)?[8\uff18][6\uff16]{_SEP})?)"
    rf"([1\uff11][3-9\uff13-\uff19]{_D}(?:{_SEP}{_D}){{8}})(?![0-9\uff10-\uff19])"
)
# Mainland ID cards: 15 to 18 characters of digits (the last may be X), even followed by letters.
_ID_CARD = re.compile(
    rf"(?<![0-9\uff10-\uff19])({_D}(?:{_SEP}{_D}){{13,16}}{_SEP}[0-9\uff10-\uff19Xx\uff38\uff58])"
    rf"(?![0-9\uff10-\uff19])"
)
_BEARER = re.compile(r"(ZZY-OPENAPI:[0-9]+:)[A-Za-z0-9+/=]+")
_SEPARATORS = re.compile(_SEP.removesuffix("?"))


def _digits(text: str) -> str:
    """The digits (and a final X) of a matched number, separators dropped, full-width folded."""
    folded = "".join(chr(ord(c) - 0xFEE0) if "\uff10" <= c <= "\uff5a" else c for c in text)
    return _SEPARATORS.sub("", folded)


def _mask_mobile_match(match: re.Match[str]) -> str:
    number = _digits(match.group(2))
    prefix = "+86 " if match.group(1) else ""
    return f"{prefix}{number[:3]}****{number[-4:]}"


def _mask_id_match(match: re.Match[str]) -> str:
    number = _digits(match.group(1))
    return f"{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}"


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask personal data and the given secrets in free text.

    Mobiles first (with a country code, separated or full-width), then ID card numbers: a
    mobile next to another number by a space is masked as a mobile, not taken as an ID.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    text = _MOBILE.sub(_mask_mobile_match, text)
    return _ID_CARD.sub(_mask_id_match, text)


def mask_id_card(value: str | None) -> str | None:
    """Keep what customer service needs to match a visitor: the last four characters."""
    if not value:
        return value
    return "*" * max(len(value) - 4, 0) + value[-4:]


def mask_mobile(value: str | None) -> str | None:
    if not value:
        return value
    return value[:3] + "****" + value[-4:] if len(value) >= 8 else "*" * len(value)


class MaskingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with ``mask``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info:
            record.exc_text = mask(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def make_formatter(log_format: str = "text") -> logging.Formatter:
    """``text``: one readable line; ``json``: one JSON object per line (time, level, logger, message)."""
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(
    level: str = "INFO", secrets: Iterable[str] = (), log_format: str = "text"
) -> None:
    """Root handler on stderr with the masking filter on the handler (so child loggers pass it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(MaskingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_catalog_sync", False):
            root.removeHandler(existing)
    handler._catalog_sync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "werkzeug", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def configure_logging_for(settings: Any) -> None:
    """``configure_logging`` from a settings object, masking every secret it holds."""
    secrets = [
        value.get_secret_value()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    ]
    configure_logging(settings.log_level, secrets, settings.log_format)
