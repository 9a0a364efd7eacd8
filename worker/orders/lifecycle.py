"""The order lifecycle as a pure state machine (no I/O).

::

    unknown ──(reconciled)──> any status below
    awaiting_payment ──> paid | awaiting_ticket ──> issued | ticket_failed
                     ├─> payment_failed
                     ├─> cancelled
                     └─> unknown (a Pay whose answer was lost)
    issued ──> redeemed | refund_pending | refunded   (derived from quantities and batches)

``unknown`` means a Create or Pay left and its answer did not come back: the supplier may or
may not have applied it, so nothing is sent again until the order is reconciled. A move to a
status the order has already passed (Create's "awaiting payment" answered after the ticket
notice) is ``stale`` and changes nothing; a move the machine does not allow (tickets for a
cancelled order) is an ``anomaly``: recorded in the history, not applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UNKNOWN = "unknown"
REJECTED = "rejected"  # Create refused by the supplier: no supplier order exists
AWAITING_PAYMENT = "awaiting_payment"
PAID = "paid"
AWAITING_TICKET = "awaiting_ticket"
ISSUED = "issued"
TICKET_FAILED = "ticket_failed"
PAYMENT_FAILED = "payment_failed"
CANCELLED = "cancelled"
# Derived from an issued order's quantities and refund batches.
REDEEMED = "redeemed"
REFUND_PENDING = "refund_pending"
REFUNDED = "refunded"

STATUSES = (
    UNKNOWN,
    REJECTED,
    AWAITING_PAYMENT,
    PAID,
    AWAITING_TICKET,
    ISSUED,
    TICKET_FAILED,
    PAYMENT_FAILED,
    CANCELLED,
    REDEEMED,
    REFUND_PENDING,
    REFUNDED,
)
# Statuses whose tickets exist: the derived ones are views of "issued".
TICKETED = frozenset({ISSUED, REDEEMED, REFUND_PENDING, REFUNDED})
PAID_OR_LATER = frozenset({PAID, AWAITING_TICKET, TICKET_FAILED}) | TICKETED

# OrderStatus of 1.1.4 / 1.1.5: 2 and 5 are failures even when IsSuccess is true.
SUPPLIER_STATUS = {
    0: AWAITING_PAYMENT,
    1: PAID,
    2: PAYMENT_FAILED,
    3: AWAITING_TICKET,
    4: ISSUED,
    5: TICKET_FAILED,
}
FAILURES = frozenset({PAYMENT_FAILED, TICKET_FAILED})

# How far along the forward path a status is; a move backwards along it is stale.
_RANK = {
    UNKNOWN: 0,
    AWAITING_PAYMENT: 1,
    PAID: 2,
    AWAITING_TICKET: 3,
    ISSUED: 4,
    TICKET_FAILED: 4,
    REDEEMED: 4,
    REFUND_PENDING: 4,
    REFUNDED: 4,
}
_ALLOWED: dict[str, frozenset[str]] = {
    UNKNOWN: frozenset(
        {
            AWAITING_PAYMENT,
            PAID,
            AWAITING_TICKET,
            ISSUED,
            TICKET_FAILED,
            PAYMENT_FAILED,
            CANCELLED,
            REJECTED,
        }
    ),
    AWAITING_PAYMENT: frozenset(
        {PAID, AWAITING_TICKET, ISSUED, TICKET_FAILED, PAYMENT_FAILED, CANCELLED, UNKNOWN}
    ),
    PAID: frozenset({AWAITING_TICKET, ISSUED, TICKET_FAILED}),
    AWAITING_TICKET: frozenset({ISSUED, TICKET_FAILED}),
    # The supplier may issue after a failure it reported (a retry on its side).
    TICKET_FAILED: frozenset({ISSUED}),
    ISSUED: frozenset(),
    REDEEMED: frozenset(),
    REFUND_PENDING: frozenset(),
    REFUNDED: frozenset(),
    PAYMENT_FAILED: frozenset(),
    CANCELLED: frozenset(),
    REJECTED: frozenset(),
}

Verdict = Literal["applied", "same", "stale", "anomaly"]


@dataclass(frozen=True)
class Move:
    """What a proposed move does: the status after it, and why."""

    verdict: Verdict
    status: str

    @property
    def changes(self) -> bool:
        return self.verdict == "applied"


def decide(current: str, target: str) -> Move:
    """Apply ``target`` to an order in ``current``: applied, same, stale or anomaly."""
    if target == current or (target == ISSUED and current in TICKETED):
        return Move("same", current)
    if target in _ALLOWED.get(current, frozenset()):
        return Move("applied", target)
    if (
        target in _RANK
        and current in _RANK
        and target != UNKNOWN
        and _RANK[target] < _RANK[current]
        and current != TICKET_FAILED
    ):
        return Move("stale", current)
    return Move("anomaly", current)


def from_supplier_status(code: int) -> str:
    """Our status for an ``OrderStatus`` code; an unknown code is ``unknown`` (reconcile it)."""
    return SUPPLIER_STATUS.get(code, UNKNOWN)


def settle(status: str, quantity: int, redeemed: int, refunded: int, pending_batches: int) -> str:
    """An issued order's shown status from its quantities and refund batches under review."""
    if status not in TICKETED:
        return status
    if pending_batches > 0:
        return REFUND_PENDING
    if quantity > 0 and refunded >= quantity:
        return REFUNDED
    if redeemed > 0 and redeemed + refunded >= quantity:
        return REDEEMED
    return ISSUED


def forward(current: int, proposed: int) -> int:
    """A count that only moves forward (redeemed, refunded)."""
    return max(current, proposed)


def reconcile_delay_s(attempts: int, *, first_s: float = 30.0, cap_s: float = 3600.0) -> float:
    """Back-off between reconciliation attempts of an unknown order: doubling, capped."""
    return float(min(cap_s, first_s * (2 ** max(attempts, 0))))
