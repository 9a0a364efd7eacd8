"""Logging with a masking filter: sign keys, ID card numbers and mobiles never leave unmasked."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Mainland ID cards (18 digits, last may be X; old 15-digit ones) and mobiles (11 digits from 1[3-9]).
_ID_CARD = re.compile(r"(?<![0-9])([0-9]{4})[0-9]{7,10}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")
_BEARER = re.compile(r"(ZZY-OPENAPI:[0-9]+:)[A-Za-z0-9+/=]+")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask personal data and the given secrets in free text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}{'*' * (len(m.group(0)) - 8)}{m.group(2)}", text)
    return _MOBILE.sub(r"\1****\2", text)


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
