"""The pure planner of a product pass: what to write, given what the supplier sent and what we hold.

No I/O here. ``worker.sync.products`` gathers both sides, asks these functions, and applies the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from models.catalog import ChangeKind


@dataclass(frozen=True)
class RemoteProduct:
    """What a page said about one product (``content_hash`` leaves out Version and ProductStatus)."""

    product_id: int
    version: int
    content_hash: str
    product_status: int


@dataclass(frozen=True)
class LocalProduct:
    """What the database holds about one product."""

    product_id: int
    version: int
    content_hash: str
    product_status: int
    is_authorized: bool


@dataclass(frozen=True)
class ProductPlan:
    """Per-page decisions: ``writes`` maps id to the change kind its upsert records.

    ``regressions`` are writes at a lower Version than the one held: applied all the same
    (Version is a change marker, not an order; a product authorized again comes back at 0),
    and counted as drift. Which of two writes is newer is decided by fetch time, in the upsert.
    """

    writes: dict[int, ChangeKind] = field(default_factory=dict)
    unchanged: list[int] = field(default_factory=list)
    regressions: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class MissingPlan:
    """After a pass: ids to confirm one by one, or an anomaly that stops any deauthorization."""

    to_confirm: list[int]
    anomaly: str | None = None


@dataclass(frozen=True)
class PageShape:
    """The shape of one received page, enough to tell whether paging drifted."""

    index: int
    requested_size: int
    total_count: int
    ids: tuple[int, ...]
    unnamed: int = 0  # entries so broken they carry no ProductId

    @property
    def size(self) -> int:
        return len(self.ids) + self.unnamed


PRICE_DUE_KINDS = frozenset({ChangeKind.CREATED, ChangeKind.UPDATED, ChangeKind.REAUTHORIZED})


def classify(remote: RemoteProduct, local: LocalProduct | None) -> ChangeKind | None:
    """The change one remote product makes to what we hold; None when it makes none."""
    if local is None:
        return ChangeKind.CREATED
    if not local.is_authorized:
        return ChangeKind.REAUTHORIZED
    if remote.content_hash != local.content_hash:
        return ChangeKind.UPDATED
    if remote.product_status != local.product_status:
        return ChangeKind.STATUS  # a shelf move, whether or not the supplier bumped Version
    if remote.version != local.version:
        return ChangeKind.UPDATED  # either way: Version marks a change, it does not order them
    return None


def plan_products(
    remote: Iterable[RemoteProduct], local: Mapping[int, LocalProduct]
) -> ProductPlan:
    """Decide each remote product: write (with its change kind) or leave alone."""
    plan = ProductPlan()
    for item in remote:
        held = local.get(item.product_id)
        kind = classify(item, held)
        if kind is None:
            plan.unchanged.append(item.product_id)
            continue
        plan.writes[item.product_id] = kind
        if held is not None and item.version < held.version:
            plan.regressions.append(item.product_id)
    return plan


def plan_missing(
    authorized: Iterable[int], seen: Iterable[int], *, is_complete: bool, max_share: float
) -> MissingPlan:
    """Authorized products a complete pass did not see; nothing after a partial one."""
    if not is_complete:
        return MissingPlan(to_confirm=[])
    held = set(authorized)
    missing = sorted(held - set(seen))
    if held and len(missing) > max_share * len(held):
        return MissingPlan(
            to_confirm=[],
            anomaly=(
                f"{len(missing)} of {len(held)} authorized products missing "
                f"(more than {max_share:.0%}); nothing deauthorized"
            ),
        )
    return MissingPlan(to_confirm=missing)


def find_drift(pages: Sequence[PageShape]) -> list[str]:
    """Why a run of pages cannot be trusted to hold every product once; empty when it can."""
    problems: list[str] = []
    if not pages:
        return ["no page received"]
    totals = sorted({page.total_count for page in pages})
    if len(totals) > 1:
        problems.append(f"TotalCount changed mid-pass: {totals}")
    first_page: dict[int, int] = {}
    for page in pages:
        for product_id in page.ids:
            if product_id in first_page and first_page[product_id] != page.index:
                problems.append(
                    f"product {product_id} on pages {first_page[product_id]} and {page.index}"
                )
            first_page.setdefault(product_id, page.index)
    # Page 1 may be short because the supplier caps pageSize; later pages then ask for the cap.
    for page in pages[1:-1]:
        if page.size < page.requested_size:
            problems.append(f"page {page.index} has {page.size} of {page.requested_size}")
    expected = pages[-1].total_count
    received = len(first_page) + sum(page.unnamed for page in pages)
    if received < expected:
        problems.append(f"received {received} distinct products of {expected}")
    return problems
