"""Scripted faults: what goes wrong, on which path, how often, and after how many requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from supplier_sandbox.params import lookup

# Answered instead of the real response, before the signature is even checked.
TRANSPORT_KINDS = frozenset(
    {
        "http500",
        "http429",
        "rejected",
        "timeout",
        "not_json",
        "busy",
        "reset",
        "slow-body",
        "lost",  # served for real, then the connection drops: the work is done, the answer lost
        "late",  # served for real, then the answer waits ``hold_s`` before it is sent
    }
)
# Applied while serving a properly signed request.
SERVE_KINDS = frozenset({"empty_page", "drift_insert", "drift_remove"})
KINDS = TRANSPORT_KINDS | SERVE_KINDS
UNTIL_CLEARED = -1


@dataclass
class Fault:
    """One scripted fault; ``count`` -1 fires until cleared, ``after`` skips matching requests."""

    id: int
    kind: str
    path: str = "*"
    count: int = 1
    after: int = 0
    match: dict[str, str] = field(default_factory=dict)
    hold_s: float = 30.0
    message: str | None = None
    code: int | None = None  # the envelope Code of a "rejected" answer (default 500)
    seen: int = 0
    fired: int = 0

    def matches(self, path: str, args: Mapping[str, Any]) -> bool:
        """Whether a request to ``path`` with these query args is one this fault watches."""
        if self.path not in ("*", path):
            return False
        return all(str(lookup(args, key)) == value for key, value in self.match.items())

    @property
    def is_spent(self) -> bool:
        """Whether it has fired as often as it was told to."""
        return self.count != UNTIL_CLEARED and self.fired >= self.count

    def to_json(self) -> dict[str, Any]:
        """The fault as the admin interface lists it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "path": self.path,
            "count": self.count,
            "after": self.after,
            "match": dict(self.match),
            "hold_s": self.hold_s,
            "message": self.message,
            "code": self.code,
            "seen": self.seen,
            "fired": self.fired,
            "spent": self.is_spent,
        }


def fault_from_json(fault_id: int, spec: Mapping[str, Any]) -> Fault:
    """Validate an admin fault spec; raises ValueError on anything unknown or malformed."""
    kind = str(spec.get("kind", ""))
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
    match = spec.get("match") or {}
    if not isinstance(match, Mapping):
        raise ValueError("match must be an object of query parameters")
    count = int(spec.get("count", 1))
    if count < UNTIL_CLEARED or count == 0:
        raise ValueError("count must be positive, or -1 for until cleared")
    after = int(spec.get("after", 0))
    if after < 0:
        raise ValueError("after must not be negative")
    message = spec.get("message")
    code = spec.get("code")
    return Fault(
        id=fault_id,
        kind=kind,
        path=str(spec.get("path") or "*"),
        count=count,
        after=after,
        match={str(key): str(value) for key, value in match.items()},
        hold_s=float(spec.get("hold_s", 30.0)),
        message=None if message is None else str(message),
        code=None if code is None else int(code),
    )


def take_due(
    faults: list[Fault],
    path: str,
    args: Mapping[str, Any],
    kinds: frozenset[str],
    *,
    first_only: bool,
) -> list[Fault]:
    """Count this request against every matching fault and return those that fire now."""
    due: list[Fault] = []
    for fault in faults:
        if fault.kind not in kinds or fault.is_spent or not fault.matches(path, args):
            continue
        fault.seen += 1
        if fault.seen <= fault.after or (first_only and due):
            continue
        fault.fired += 1
        due.append(fault)
    return due
