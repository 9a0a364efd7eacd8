"""The callback inbox: every verified notification, committed before the supplier is answered.

``dedupe_key`` (unique) makes a repeated delivery land once; ``inbox_signatures`` is the
replay cache: the body each signature was first seen with, so an order notice arriving under
a known signature with another body is stored ``held`` instead of applied.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JSONType, utcnow


class InboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # parked after too many attempts; an operator replays it
    INVALID = "invalid"  # verified but not applicable (see ``reason``); replayed after a fix
    HELD = "held"  # an order notice under a reused signature; applied once an operator releases it


class InboxMessage(Base):
    """One notification as received (personal data already masked), and how processing went."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    service_name: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)  # "product:11063", "order:4553010"
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Why a row is invalid or held (no personal data: field paths and rules only).
    reason: Mapped[str | None] = mapped_column(Text)
    # The body as received, masked, when it could not be parsed as UTF-8 JSON.
    raw_body: Mapped[str | None] = mapped_column(Text)
    # Not re-queued before this; while an attempt runs it is the attempt's lease.
    next_attempt_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_inbox_status_updated", "status", "updated_at"),
        Index("ix_inbox_status_next_attempt", "status", "next_attempt_at"),
    )


class InboxSignature(Base):
    """The replay cache: a decoded signature and the dedupe key of the body it first came with."""

    __tablename__ = "inbox_signatures"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex of the HMAC digest
    dedupe_key: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
