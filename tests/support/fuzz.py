"""Hypothesis strategies and profiles shared by the callback property and fuzz tests.

Profiles: ``callback-fuzz`` (the default: quick, for every run; derandomized under ``CI=true``
so a CI failure is reproducible) and ``callback-fuzz-deep`` (many more examples, for a long
local session): ``CALLBACK_FUZZ_PROFILE=callback-fuzz-deep pytest tests/callbacks -k fuzz``.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from tests.support.callbacks import ID_NUMBER, MOBILE

settings.register_profile(
    "callback-fuzz",
    max_examples=60,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    # No shrinking: an example is a few database round trips, so shrinking one takes minutes;
    # the failure message names the mutation and shows the body instead.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "callback-fuzz-deep", parent=settings.get_profile("callback-fuzz"), max_examples=2000
)
FUZZ = settings.get_profile(os.environ.get("CALLBACK_FUZZ_PROFILE", "callback-fuzz"))
# pytest-timeout for a fuzz test: a quick run stays well under it; a deep one gets its time.
FUZZ_TIMEOUT_S = max(180, 2 * FUZZ.max_examples)

_order_ids = itertools.count(10_000)
_pii_text = st.sampled_from(
    [
        "",
        " ",
        "景区闭园",
        f"游客 身份证{ID_NUMBER}",
        f"手机 {MOBILE}",
        "+86 181 0653 2623",
        "１８１０６５３２６２３",
        "bad\x00text",
        "lone\ud800half",
    ]
)
_vouchers_none = st.sampled_from([None, "", [], {}])
_codes = st.lists(st.text("ABC0123456789-", min_size=1, max_size=12), max_size=3)


@st.composite
def lawful_notice(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["refund", "verify", "ticket", "product"]))
    order_id = next(_order_ids)  # a fresh order: equal order bodies would be one fact
    if kind == "product":
        return "order_product_notify", {
            "ProductId": draw(st.integers(1, 2**40)),
            "Status": draw(st.sampled_from([0, 1, 2, 3])),
        }
    if kind == "refund":
        return "order_refund_notify", {
            "OrderId": order_id,
            "RefundApplyNo": draw(st.sampled_from(["", "R-1", None])),
            "RefundStatus": draw(st.sampled_from([1, 2])),
            "RefundReason": draw(_pii_text),
            "VoucherCode": draw(st.one_of(_codes, _vouchers_none)),
        }
    if kind == "verify":
        total = draw(st.integers(0, 50))
        return "order_verify_notify", {
            "TicketStatus": 1,
            "OriginOrderId": f"O{order_id}",
            "OrderId": order_id,
            "VoucherCode": draw(st.one_of(_codes, _vouchers_none)),
            "OrderTotal": total,
            "CheckedNumber": draw(st.integers(0, total)),
            "VoucherType": draw(st.sampled_from([1, 2, None])),
        }
    user = {"IDCardNo": ID_NUMBER, "VoucherCode": "V-1", "Mobile": MOBILE}
    vouchers = draw(
        st.one_of(
            _vouchers_none,
            st.just({"OrderVoucherCode": "OV1", "OrderUserVouchers": [user]}),
            st.just({"OrderVoucherCode": "OV1", "OrderUserVouchers": None}),
        )
    )
    return "order_ticket_notify", {
        "OriginOrderId": f"O{order_id}",
        "OrderId": order_id,
        "VoucherCode": vouchers,
        "TicketStatus": draw(st.sampled_from([1, 2])),
    }
