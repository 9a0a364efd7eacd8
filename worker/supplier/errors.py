"""The supplier adapter's exception tree.

SupplierError                    anything that went wrong talking to the supplier
├── SupplierUnavailable          retriable: timeout, connection error, 429, 5xx, non-JSON body,
│   │                            a read's Data null where data is expected
│   └── SupplierBusy             a read answered IsSuccess false with a server-side or busy
│                                Code or Message (``transient_rule``): retried like a 5xx
├── SupplierOutcomeUnknown       a non-idempotent call (Create, Pay, Refund, Cancel) may or may
│                                not have been applied: reconcile by OriginOrderId, NEVER retry
│                                (deliberately not under SupplierUnavailable)
├── SupplierRejected             fatal: the supplier answered IsSuccess false (Code, Message, LogId)
├── SupplierBadPayload           the answer was JSON but not the shape the contract promises
└── SupplierInconsistent         a well-formed answer that is not about what was asked (a
                                 filter ignored): neither "gone" nor a bad payload

Catch ``SupplierUnavailable`` to retry; a caller that must tell "failed" from "maybe applied"
catches ``SupplierOutcomeUnknown`` first; ``SupplierError`` catches everything.
"""

from __future__ import annotations


class SupplierError(Exception):
    """Base of every supplier failure."""


class SupplierUnavailable(SupplierError):
    """The supplier could not be reached or answered with a transient failure; safe to retry reads."""

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class SupplierBusy(SupplierUnavailable):
    """``IsSuccess: false`` that marks an overloaded supplier; a read is retried, a write never."""

    def __init__(self, code: int | None, message: str, log_id: str) -> None:
        super().__init__(f"supplier busy: Code={code} Message={message!r} LogId={log_id!r}")
        self.code = code
        self.message = message
        self.log_id = log_id


class SupplierOutcomeUnknown(SupplierError):
    """A non-idempotent request failed in flight: it may have been applied. Never retry blindly."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class SupplierRejected(SupplierError):
    """The supplier said no (``IsSuccess`` false). Keep ``log_id``: the supplier's support asks for it."""

    def __init__(
        self, code: int | None, message: str, log_id: str, *, status_code: int | None = None
    ) -> None:
        super().__init__(
            f"supplier rejected the request: Code={code} Message={message!r} LogId={log_id!r}"
        )
        self.code = code
        self.message = message
        self.log_id = log_id
        self.status_code = status_code


class SupplierBadPayload(SupplierError):
    """The supplier answered, but not in the shape the contract promises (Data did not validate)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SupplierInconsistent(SupplierError):
    """A valid answer to another question; acting on it (e.g. deauthorizing) would be a guess."""
