"""The pure planner: new, changed, unchanged, missing, reappeared, drifted. No I/O."""

from __future__ import annotations

from models.catalog import ChangeKind
from worker.sync.plan import (
    LocalProduct,
    PageShape,
    RemoteProduct,
    classify,
    find_drift,
    plan_missing,
    plan_products,
)


def remote(pid: int, version: int = 1, digest: str = "h", status: int = 1) -> RemoteProduct:
    return RemoteProduct(pid, version, digest, status)


def local(
    pid: int, version: int = 1, digest: str = "h", status: int = 1, authorized: bool = True
) -> LocalProduct:
    return LocalProduct(pid, version, digest, status, authorized)


def test_new_product_is_created() -> None:
    assert classify(remote(1), None) is ChangeKind.CREATED


def test_unchanged_product_is_left_alone() -> None:
    plan = plan_products([remote(1)], {1: local(1)})
    assert plan.writes == {} and plan.unchanged == [1]


def test_version_moved_is_updated() -> None:
    assert classify(remote(1, version=2), local(1)) is ChangeKind.UPDATED


def test_content_changed_without_version_bump_is_updated() -> None:
    assert classify(remote(1, digest="other"), local(1)) is ChangeKind.UPDATED


def test_shelf_move_is_a_status_change_with_or_without_bump() -> None:
    assert classify(remote(1, status=0), local(1)) is ChangeKind.STATUS
    assert classify(remote(1, version=2, status=0), local(1)) is ChangeKind.STATUS


def test_reappeared_product_is_reauthorized() -> None:
    assert classify(remote(1), local(1, authorized=False)) is ChangeKind.REAUTHORIZED


def test_lower_version_is_applied_and_counted_as_a_regression() -> None:
    plan = plan_products([remote(1, version=1, digest="old")], {1: local(1, version=3)})
    assert plan.writes == {1: ChangeKind.UPDATED} and plan.regressions == [1]


def test_lower_version_with_same_content_is_still_a_change() -> None:
    plan = plan_products([remote(1, version=2)], {1: local(1, version=3)})
    assert plan.writes == {1: ChangeKind.UPDATED} and plan.regressions == [1]


def test_product_back_at_version_zero_is_reauthorized() -> None:
    plan = plan_products([remote(1, version=0, digest="new")], {1: local(1, 5, authorized=False)})
    assert plan.writes == {1: ChangeKind.REAUTHORIZED} and plan.regressions == [1]


def test_higher_version_is_no_regression() -> None:
    plan = plan_products([remote(1, version=4)], {1: local(1, version=3)})
    assert plan.writes == {1: ChangeKind.UPDATED} and plan.regressions == []


def test_missing_after_complete_pass_are_confirmed() -> None:
    plan = plan_missing(range(1, 11), range(2, 11), is_complete=True, max_share=0.2)
    assert plan.to_confirm == [1] and plan.anomaly is None


def test_partial_pass_confirms_nothing() -> None:
    assert plan_missing(range(1, 11), [], is_complete=False, max_share=0.2).to_confirm == []


def test_mass_disappearance_is_an_anomaly() -> None:
    plan = plan_missing(range(1, 11), range(1, 8), is_complete=True, max_share=0.2)
    assert plan.to_confirm == [] and plan.anomaly is not None and "3 of 10" in plan.anomaly


def test_share_at_the_limit_is_allowed() -> None:
    assert plan_missing(range(1, 11), range(3, 11), is_complete=True, max_share=0.2).to_confirm == [
        1,
        2,
    ]


def page(index: int, ids: range | list[int], total: int, size: int = 3) -> PageShape:
    return PageShape(index, size, total, tuple(ids))


def test_clean_paging_has_no_drift() -> None:
    assert find_drift([page(1, range(1, 4), 7), page(2, range(4, 7), 7), page(3, [7], 7)]) == []


def test_capped_first_page_is_not_drift() -> None:
    pages = [PageShape(1, 100, 5, (1, 2)), PageShape(2, 2, 5, (3, 4)), PageShape(3, 2, 5, (5,))]
    assert find_drift(pages) == []


def test_total_count_changing_is_drift() -> None:
    assert any(
        "TotalCount" in p for p in find_drift([page(1, range(1, 4), 6), page(2, range(4, 7), 7)])
    )


def test_id_on_two_pages_is_drift() -> None:
    problems = find_drift([page(1, [1, 2, 3], 6), page(2, [3, 4, 5], 6)])
    assert any("on pages 1 and 2" in p for p in problems)


def test_short_middle_page_is_drift() -> None:
    assert any(
        "page 2" in p
        for p in find_drift([page(1, [1, 2, 3], 7), page(2, [4, 5], 7), page(3, [6, 7], 7)])
    )


def test_stopping_short_of_total_is_drift() -> None:
    assert any("received 3" in p for p in find_drift([page(1, [1, 2, 3], 6), page(2, [], 6)]))
