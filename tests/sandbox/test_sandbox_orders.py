"""The order lifecycle end to end, with the callbacks a real supplier would send."""

from __future__ import annotations

import datetime
import json
from typing import Any

import httpx
import pytest

from supplier_sandbox.notifier import notification_payload
from supplier_sandbox.server import RunningSandbox
from tests.support.sandbox import PARTNER_ID, SIGN_KEY, TODAY, Supplier, make_bookable, now_ms
from worker.supplier.signing import verify_request

from .conftest import Receiver

VISIT = TODAY + datetime.timedelta(days=3)
CONTACT = {"Name": "张三", "Mobile": "13800000000", "IdCard": "330101199001011234"}
VISITORS = [
    {"Name": "李四", "Mobile": "13900000001", "IdCard": "330101199202021111"},
    {"Name": "王五", "Mobile": "13900000002", "IdCard": "330101199303032222"},
]


def order_body(product_id: int, origin: str, quantity: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "PartnerId": PARTNER_ID,
        "OriginOrderId": origin,
        "ContactPerson": CONTACT,
        "ProductId": product_id,
        "OrderQuantity": quantity,
        "VisitDate": VISIT.isoformat(),
        **extra,
    }


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["IsSuccess"] is True, body
    assert body["LogId"]
    return body


def refused(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["IsSuccess"] is False, body
    assert fragment in body["Message"], body["Message"]


def create_and_pay(supplier: Supplier, product_id: int, origin: str, **extra: Any) -> int:
    created = ok(supplier.post("/order/Create", order_body(product_id, origin, **extra)))
    order_id: int = created["Data"]["OrderId"]
    ok(supplier.post("/order/Pay", {"PartnerId": PARTNER_ID, "OrderId": order_id}))
    return order_id


def use_receiver(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.state.update_settings({"callback_url": receiver.url})


def settle(sandbox: RunningSandbox) -> None:
    assert sandbox.state.callbacks.wait_settled(10)


def test_one_code_order_from_create_to_refund_with_every_callback(
    sandbox: RunningSandbox, supplier: Supplier, admin: httpx.Client, receiver: Receiver
) -> None:
    use_receiver(sandbox, receiver)
    product_id = make_bookable(sandbox, entrance_mode=0)

    created = ok(supplier.post("/order/Create", order_body(product_id, "D-1001")))
    assert created["Code"] == 1000
    assert created["Data"]["OriginOrderId"] == "D-1001"
    assert created["Data"]["DistributorId"] == PARTNER_ID
    assert created["Data"]["OrderStatus"] == 0
    order_id = created["Data"]["OrderId"]

    paid = ok(supplier.post("/order/Pay", {"PartnerId": PARTNER_ID, "OrderId": order_id}))
    assert paid["Code"] == 1
    assert paid["Data"]["OrderStatus"] == 4
    assert paid["Data"]["PayMoney"] == 200.0
    voucher = paid["Data"]["VoucherCode"]
    assert voucher and paid["Data"]["OrderUserVouchers"] == []

    codes = ok(supplier.get("/order/PersonQrCodes", {"originOrderId": "D-1001"}))
    assert codes["Data"] == [{"Name": "张三", "QrCode": voucher}]

    assert admin.post(f"/orders/{order_id}/redeem", json={"count": 1}).status_code == 200
    applied = ok(
        supplier.post(
            "/order/Refund",
            {"PartnerId": PARTNER_ID, "OrderId": order_id, "RefundCount": 1, "RefundId": "R-1"},
        )
    )
    assert applied["Code"] == 1000
    assert applied["Data"] == {"ApplyId": 1, "RefundStatus": 0}
    review = admin.post("/refunds/1/review", json={"approve": True})
    assert review.json()["refund"]["status"] == 1
    settle(sandbox)

    ticket = receiver.bodies("order_ticket_notify")
    assert ticket == [
        {
            "OriginOrderId": "D-1001",
            "OrderId": order_id,
            "VoucherCode": {"OrderVoucherCode": voucher, "OrderUserVouchers": []},
            "TicketStatus": 1,
        }
    ]
    verified = receiver.bodies("order_verify_notify")
    assert verified[0]["CheckedNumber"] == 1 and verified[0]["OrderTotal"] == 2
    assert verified[0]["OriginOrderId"] == "D-1001" and verified[0]["VoucherType"] == 1
    refund = receiver.bodies("order_refund_notify")
    assert refund[0]["RefundApplyNo"] == "R-1" and refund[0]["RefundStatus"] == 1
    order = admin.get(f"/orders/{order_id}").json()["order"]
    assert (order["checked"], order["refunded"], order["status"]) == (1, 1, 4)


def test_callbacks_are_signed_with_the_notify_url_path(
    sandbox: RunningSandbox, supplier: Supplier, receiver: Receiver
) -> None:
    use_receiver(sandbox, receiver)
    create_and_pay(supplier, make_bookable(sandbox), "D-2001")
    settle(sandbox)
    delivered = receiver.received[0]
    assert delivered.path == "/callbacks/zzy"
    verdict = verify_request(
        delivered.headers,
        partner_id=PARTNER_ID,
        sign_key=SIGN_KEY,
        api_path="/callbacks/zzy",
        now_ms=now_ms(),
        body_partner_id=delivered.body["OrderNotifyHeader"]["PartnerId"],
    )
    assert verdict.ok, verdict.reason
    assert isinstance(delivered.body["OrderNotifyBody"], str)
    assert delivered.body["OrderNotifyHeader"]["NotifyServiceName"] == "order_ticket_notify"


def test_callback_is_resent_until_the_distributor_says_is_success(
    sandbox: RunningSandbox, admin: httpx.Client, receiver: Receiver
) -> None:
    use_receiver(sandbox, receiver)
    receiver.replies = [
        {"Code": 500, "IsSuccess": False, "LogId": "", "Message": "存储失败"},
        {"Code": 1000, "IsSuccess": "true", "Message": "not a real boolean"},
    ]
    body = {"ProductId": 10001, "Status": 3}
    sent = admin.post("/callbacks/send", json={"service": "order_product_notify", "body": body})
    assert sent.status_code == 202
    assert admin.post("/callbacks/wait", json={"timeout_s": 10}).json() == {"settled": True}
    assert [json.loads(r.body["OrderNotifyBody"]) for r in receiver.received] == [body] * 3
    delivery = admin.get("/callbacks").json()["deliveries"][0]
    assert delivery["attempts"] == 3 and delivery["done"] is True
    assert delivery["last_status"] == 200 and "收到通知" in delivery["last_reply"]
    assert delivery["url"] == receiver.url and delivery["service"] == "order_product_notify"


def test_callback_gives_up_after_the_configured_attempts(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    use_receiver(sandbox, receiver)
    receiver.replies = [{"IsSuccess": False}] * 10
    sandbox.state.notify("order_product_notify", {"ProductId": 1, "Status": 0})
    settle(sandbox)
    [delivery] = sandbox.state.callbacks.deliveries()
    assert delivery["attempts"] == 5 and delivery["given_up"] and not delivery["done"]


def test_one_code_per_visitor_needs_every_visitor_and_gets_a_code_each(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    product_id = make_bookable(sandbox, entrance_mode=1)
    refused(
        supplier.post("/order/Create", order_body(product_id, "V-1", VisitPerson=VISITORS[:1])),
        "游客人数须与票数一致",
    )
    order_id = create_and_pay(supplier, product_id, "V-2", VisitPerson=VISITORS)
    order = sandbox.state.orders.order(order_id)
    assert order["voucher_code"] is None
    vouchers = order["user_vouchers"]
    assert [v["IDCardNo"] for v in vouchers] == [v["IdCard"] for v in VISITORS]
    assert len({v["VoucherCode"] for v in vouchers}) == 2
    codes = ok(supplier.get("/order/PersonQrCodes", {"originOrderId": "V-2"}))["Data"]
    assert codes == [
        {"Name": "李四", "QrCode": vouchers[0]["VoucherCode"]},
        {"Name": "王五", "QrCode": vouchers[1]["VoucherCode"]},
    ]


def test_pay_uses_the_unit_price_given_or_the_day_price(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    product_id = make_bookable(sandbox)
    created = ok(supplier.post("/order/Create", order_body(product_id, "P-1", quantity=3)))
    body = {"PartnerId": PARTNER_ID, "OrderId": created["Data"]["OrderId"], "UnitPrice": 95.5}
    assert ok(supplier.post("/order/Pay", body))["Data"]["PayMoney"] == 286.5
    refused(supplier.post("/order/Pay", body), "请勿重复支付")


def test_duplicate_origin_order_id_is_refused(sandbox: RunningSandbox, supplier: Supplier) -> None:
    product_id = make_bookable(sandbox)
    ok(supplier.post("/order/Create", order_body(product_id, "DUP")))
    refused(supplier.post("/order/Create", order_body(product_id, "DUP")), "已存在")
    assert len(sandbox.state.orders.orders()) == 1


def test_only_unpaid_orders_cancel_and_cancelled_ones_do_not_pay(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    product_id = make_bookable(sandbox)
    created = ok(supplier.post("/order/Create", order_body(product_id, "C-1")))
    order_id = created["Data"]["OrderId"]
    cancelled = ok(supplier.post("/order/CancelOrder", params={"orderId": order_id}))
    assert cancelled["Code"] == 0 and cancelled["Message"] == "订单已取消"
    refused(supplier.post("/order/CancelOrder", params={"orderId": order_id}), "重复取消")
    refused(supplier.post("/order/Pay", {"PartnerId": PARTNER_ID, "OrderId": order_id}), "已取消")
    paid_id = create_and_pay(supplier, product_id, "C-2")
    refused(supplier.post("/order/CancelOrder", params={"orderId": paid_id}), "已支付")
    refused(supplier.post("/order/CancelOrder", params={"orderId": 1}), "订单不存在")


def test_daily_stock_is_enforced_and_released_by_cancel(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    product_id = make_bookable(sandbox, stock=3)
    first = ok(supplier.post("/order/Create", order_body(product_id, "S-1", quantity=2)))
    refused(supplier.post("/order/Create", order_body(product_id, "S-2", quantity=2)), "库存不足")
    ok(supplier.post("/order/CancelOrder", params={"orderId": first["Data"]["OrderId"]}))
    ok(supplier.post("/order/Create", order_body(product_id, "S-3", quantity=3)))


def test_booking_rules_refuse_in_chinese(sandbox: RunningSandbox, supplier: Supplier) -> None:
    catalog = sandbox.state.catalog
    product_id = make_bookable(sandbox)
    catalog.bump_version(product_id, {"MaxNumberByOrder": 2})
    refused(
        supplier.post("/order/Create", order_body(product_id, "B-1", quantity=3)), "最大购买数量"
    )
    early = order_body(product_id, "B-2", VisitDate="2025-03-01")
    refused(supplier.post("/order/Create", early), "不能早于今天")
    catalog.reprice(
        product_id,
        rules=[{"PriceType": 1, "BeginTime": "2025-03-03", "EndTime": "2025-03-04", "Price": 1,
                "SalePrice": 2, "MarketPrice": 3, "DailyStock": 0, "BookingDay": 0}],
    )  # fmt: skip
    refused(supplier.post("/order/Create", order_body(product_id, "B-3")), "不可售")
    catalog.set_shelf(product_id, False)
    refused(supplier.post("/order/Create", order_body(product_id, "B-4")), "已下架")
    catalog.deauthorize(product_id)
    refused(supplier.post("/order/Create", order_body(product_id, "B-5")), "未授权")


def test_booking_days_ahead_uses_the_documents_message(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    product_id = make_bookable(sandbox)
    sandbox.state.catalog.reprice(
        product_id,
        rules=[{"PriceType": 3, "BeginTime": "2025-03-03", "EndTime": None, "Price": 1,
                "SalePrice": 2, "MarketPrice": 3, "DailyStock": 0, "BookingDay": 5}],
    )  # fmt: skip
    verify = {
        "PartnerId": PARTNER_ID,
        "ProductId": product_id,
        "VisitDate": f"{VISIT.isoformat()} 13:20:36",
        "OrderUsers": [{"UserName": "游客", "Mobile": "18102623512", "CardID": "3301036566544662"}],
    }
    refused(supplier.post("/order/Verify", verify), "游玩预订时间不符合产品预订时间限制")
    later = {**verify, "VisitDate": (TODAY + datetime.timedelta(days=6)).isoformat()}
    assert ok(supplier.post("/order/Verify", later))["Code"] == 0
    assert sandbox.state.orders.orders() == []


def test_timed_product_needs_a_session_that_exists(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    catalog = sandbox.state.catalog
    product_id = next(pid for pid in catalog.authorized_ids() if catalog.has_seats(pid))
    catalog.bump_version(
        product_id, {"ProductStatus": 1, "EntranceMode": 0, "MaxNumberByOrder": 0, "TotoalStock": 0}
    )
    catalog.reprice(
        product_id,
        rules=[{"PriceType": 3, "BeginTime": "2025-03-03", "EndTime": None, "Price": 1,
                "SalePrice": 2, "MarketPrice": 3, "DailyStock": 0, "BookingDay": 0}],
    )  # fmt: skip
    day = next(seat for seat in catalog.seats(product_id) if seat.day > TODAY)
    body = order_body(product_id, "T-1", VisitDate=day.day.isoformat())
    refused(supplier.post("/order/Create", body), "场次")
    refused(supplier.post("/order/Create", {**body, "BeginPlayTime": "03:00"}), "场次不存在")
    timed = {**body, "BeginPlayTime": day.start, "EndPlayTime": day.end}
    created = ok(supplier.post("/order/Create", timed))
    order = sandbox.state.orders.order(created["Data"]["OrderId"])
    assert order["begin_play_time"] == day.start


def test_refunds_need_a_new_refund_id_and_enough_tickets(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    order_id = create_and_pay(supplier, make_bookable(sandbox), "R-1")
    refund = {"PartnerId": PARTNER_ID, "OrderId": order_id, "RefundCount": 1, "RefundId": "X"}
    ok(supplier.post("/order/Refund", refund))
    refused(supplier.post("/order/Refund", refund), "批次号重复")
    refused(supplier.post("/order/Refund", {**refund, "RefundId": "Y", "RefundCount": 2}), "不足")
    refused(supplier.post("/order/Refund", {**refund, "RefundId": "Z", "OrderId": 7}), "不存在")


def test_supplier_forced_refund_and_failed_ticketing_are_notified(
    sandbox: RunningSandbox, supplier: Supplier, admin: httpx.Client, receiver: Receiver
) -> None:
    use_receiver(sandbox, receiver)
    product_id = make_bookable(sandbox)
    issued = create_and_pay(supplier, product_id, "F-1")
    forced = admin.post(f"/orders/{issued}/force-refund", json={"count": 2, "reason": "景区闭园"})
    assert forced.json()["order"]["refunded"] == 2
    assert admin.post("/settings", json={"auto_issue": False}).json()["auto_issue"] is False
    pending = create_and_pay(supplier, product_id, "F-2")
    assert sandbox.state.orders.order(pending)["status"] == 3
    assert admin.post(f"/orders/{pending}/issue", json={"ok": False}).status_code == 200
    settle(sandbox)
    [refund] = receiver.bodies("order_refund_notify")
    assert refund["RefundApplyNo"] == "" and refund["RefundReason"] == "景区闭园"
    tickets = receiver.bodies("order_ticket_notify")
    assert [t["TicketStatus"] for t in tickets] == [1, 2]
    assert tickets[1]["OriginOrderId"] == "F-2"


def test_rejected_refund_review_is_notified_with_status_2(
    sandbox: RunningSandbox, supplier: Supplier, admin: httpx.Client, receiver: Receiver
) -> None:
    use_receiver(sandbox, receiver)
    order_id = create_and_pay(supplier, make_bookable(sandbox), "RR-1")
    refund = {"PartnerId": PARTNER_ID, "OrderId": order_id, "RefundCount": 1, "RefundId": "RB-1"}
    apply_id = ok(supplier.post("/order/Refund", refund))["Data"]["ApplyId"]
    admin.post(f"/refunds/{apply_id}/review", json={"approve": False, "reason": "已过退票时间"})
    assert admin.post(f"/refunds/{apply_id}/review", json={"approve": True}).status_code == 400
    settle(sandbox)
    [notice] = receiver.bodies("order_refund_notify")
    assert notice["RefundStatus"] == 2 and notice["RefundReason"] == "已过退票时间"
    assert sandbox.state.orders.order(order_id)["refunded"] == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("not json", "JSON"),
        ({"OrderId": 1}, "PartnerId"),
        ({"PartnerId": 1, "OrderId": 1}, "不一致"),
        ({"PartnerId": PARTNER_ID}, "OrderId"),
        ({"PartnerId": PARTNER_ID, "OrderId": "abc"}, "格式错误"),
    ],
)
def test_bad_bodies_are_refused_in_chinese(supplier: Supplier, body: Any, fragment: str) -> None:
    if isinstance(body, str):
        response = supplier.http.post(
            "/order/Pay", content=body, headers=supplier.headers("/order/Pay")
        )
    else:
        response = supplier.post("/order/Pay", body)
    refused(response, fragment)


def test_bad_contact_mobile_is_refused(sandbox: RunningSandbox, supplier: Supplier) -> None:
    body = order_body(make_bookable(sandbox), "M-1")
    body["ContactPerson"] = {**CONTACT, "Mobile": "12345"}
    refused(supplier.post("/order/Create", body), "手机号")


def test_product_mutations_can_notify_the_distributor(
    sandbox: RunningSandbox, admin: httpx.Client, receiver: Receiver
) -> None:
    use_receiver(sandbox, receiver)
    first, second = sandbox.state.catalog.authorized_ids()[:2]
    admin.post(
        f"/products/{first}/version", json={"changes": {"ProductName": "新名"}, "notify": True}
    )
    admin.post(f"/products/{first}/reprice", json={"delta": "5.00", "notify": True})
    admin.post(f"/products/{second}/shelf", json={"on_shelf": False, "notify": True})
    admin.post(f"/products/{second}/shelf", json={"on_shelf": True, "notify": True})
    admin.post(f"/products/{second}/deauthorize", json={"notify": True})
    admin.post(f"/products/{first}/reprice", json={"delta": "1.00"})  # silent
    settle(sandbox)
    assert receiver.bodies("order_product_notify") == [
        {"ProductId": first, "Status": 2},
        {"ProductId": first, "Status": 3},
        {"ProductId": second, "Status": 0},
        {"ProductId": second, "Status": 1},
        {"ProductId": second, "Status": 0},
    ]


@pytest.mark.parametrize(
    ("quirks", "expected"),
    [
        (frozenset(), {"OrderNotifyBody": '{"OrderId":7,"VoucherCode":[]}'}),
        (frozenset({"null-lists"}), {"OrderNotifyBody": '{"OrderId":7,"VoucherCode":null}'}),
        (frozenset({"camel-case"}), {"orderNotifyBody": '{"orderId":7,"voucherCode":[]}'}),
        (
            frozenset({"notice-body-object", "null-lists", "camel-case"}),
            {"orderNotifyBody": {"orderId": 7, "voucherCode": None}},
        ),
    ],
    ids=["plain", "null-lists", "camel-case", "all-three"],
)
def test_notices_take_the_shape_quirks(quirks: frozenset[str], expected: dict[str, Any]) -> None:
    """The lawful shapes our receiver reads, so the sandbox can send each of them."""
    payload = notification_payload(
        9258, "order_verify_notify", {"OrderId": 7, "VoucherCode": []}, quirks
    )
    header_key = "orderNotifyHeader" if "camel-case" in quirks else "OrderNotifyHeader"
    header = payload.pop(header_key)
    assert payload == expected
    names = (
        ("partnerId", "notifyServiceName")
        if "camel-case" in quirks
        else ("PartnerId", "NotifyServiceName")
    )
    assert header == dict(zip(names, (9258, "order_verify_notify"), strict=True))
