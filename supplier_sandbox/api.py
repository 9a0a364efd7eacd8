"""The eight supplier endpoints of CONTRACT.md, plus the gate every request passes first.

The gate counts the request, waits the configured latency, lets a fault answer instead,
checks the signature, and applies drift before the view runs.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, g, request

from supplier_sandbox.envelope import Rejected
from supplier_sandbox.faults import Fault
from supplier_sandbox.order_records import parse_create, parse_pay, parse_refund, parse_verify
from supplier_sandbox.params import lookup, optional_int, required_date, required_int, required_str
from supplier_sandbox.quirks import (
    BUSY_ANSWERS,
    HTTP_ERRORS,
    page_layout,
    price_data,
    product_page,
)
from supplier_sandbox.replies import PRODUCTS_SLOT, current_state, supplier_reply
from supplier_sandbox.signing import refusal

PRODUCTS_PATH = "/product/getProductByDistributor"
PRICES_PATH = "/product/getProductPriceByDistributor"
ADMIN_PREFIX = "/_admin"

_NOT_JSON_BODY = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>502 Bad Gateway</h1><p>网关错误，请稍后重试。</p><hr><p>nginx</p></body></html>"
)

bp = Blueprint("supplier", __name__)


@bp.before_app_request
def gate() -> Response | None:
    """Count, delay, fault, authenticate, drift: in that order, as a real front end would."""
    if request.path.startswith(ADMIN_PREFIX):
        return None
    state = current_state()
    state.traffic.count(request.path)
    if state.traffic.latency_ms > 0:
        time.sleep(state.traffic.latency_ms / 1000)
    fault = state.traffic.transport_fault(request.path, request.args)
    if fault is not None:
        answer = _fault_answer(fault)
        if answer is not None:
            return answer
    refused = refusal(
        dict(request.headers.items()),
        partner_id=state.partner_id,
        sign_key=state.config.sign_key,
        api_path=request.path,
        now_ms=int(time.time() * 1000),
        tolerance_ms=state.config.tolerance_ms,
    )
    if refused is not None:
        reason, tag = refused
        message = f"鉴权失败：{reason}（{tag}）"
        return supplier_reply(None, code=401, ok=False, message=message, status=401)
    g.empty_page = False
    for serve_fault in state.traffic.serve_faults(request.path, request.args):
        if serve_fault.kind == "drift_insert":
            state.catalog.drift_insert()
        elif serve_fault.kind == "drift_remove":
            state.catalog.drift_remove()
        else:
            g.empty_page = True
    return None


def _fault_answer(fault: Fault) -> Response | None:
    state = current_state()
    if fault.kind == "busy":
        code, message = state.traffic.pick(BUSY_ANSWERS)
        if fault.message is not None:
            code, message = (500 if fault.code is None else fault.code), fault.message
        return supplier_reply(None, code=code, ok=False, message=message)
    if fault.kind == "reset":
        _drop_connection()
        return Response(b"", status=500)  # never delivered: the connection is gone
    if fault.kind == "slow-body":
        g.slow_body = True
        return None  # answer for real, then trickle it out and stop halfway
    if fault.kind == "lost":
        g.lost_answer = True
        return None  # served for real; the answer is dropped on the way out
    if fault.kind == "late":
        g.late_s = fault.hold_s
        return None  # served for real; the answer leaves after hold_s
    if fault.kind == "timeout":
        current_state().traffic.hold(fault.hold_s)
        return None  # then answer for real: the work is done even if the caller gave up
    if fault.kind == "not_json":
        return Response(_NOT_JSON_BODY, status=200, content_type="text/html; charset=utf-8")
    if fault.kind == "http429":
        reply = supplier_reply(
            None,
            code=429,
            ok=False,
            message=fault.message or "请求过于频繁，请稍后再试",
            status=429,
        )
        reply.headers["Retry-After"] = "1"
        return reply
    if fault.kind == "rejected":
        return supplier_reply(
            None,
            code=500 if fault.code is None else fault.code,
            ok=False,
            message=fault.message or "系统繁忙，请稍后再试",
        )
    status = 500
    if fault.id == 0 and "http500" in state.config.quirks:
        status = state.traffic.pick(HTTP_ERRORS)
    if status == 502:
        return Response(_NOT_JSON_BODY, status=502, content_type="text/html; charset=utf-8")
    return supplier_reply(
        None, code=status, ok=False, message=fault.message or "服务器内部错误", status=status
    )


def _drop_connection() -> None:
    """Close the connection under the request: the caller sees it dropped without an answer."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@bp.after_app_request
def lose_or_delay(response: Response) -> Response:
    """The lost and late faults: the work is done; its answer is dropped, or held back."""
    if getattr(g, "lost_answer", False):
        _drop_connection()
        return Response(b"", status=500)  # never delivered: the connection is gone
    late = getattr(g, "late_s", None)
    if late:
        current_state().traffic.hold(float(late))
    return response


@bp.after_app_request
def trickle(response: Response) -> Response:
    """The slow-body fault: send the answer in slow pieces and stop halfway (truncated JSON)."""
    if not getattr(g, "slow_body", False):
        return response
    body = response.get_data()

    def pieces() -> Iterator[bytes]:
        third = max(1, len(body) // 3)
        yield body[:third]
        time.sleep(0.05)
        yield body[third : 2 * third]

    return Response(pieces(), status=response.status_code, content_type=response.content_type)


@bp.errorhandler(Rejected)
def rejected(error: Rejected) -> Response:
    """A refusal is HTTP 200 with IsSuccess false and a Chinese message."""
    return supplier_reply(None, code=error.code, ok=False, message=error.message)


def _is_empty_page() -> bool:
    return bool(getattr(g, "empty_page", False))


def _json_body() -> Mapping[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Rejected("请求参数格式错误，应为JSON对象")
    partner = required_int(lookup(body, "PartnerId"), "PartnerId")
    if partner != current_state().partner_id:
        raise Rejected("合作ID与请求头PartnerId不一致")
    return body


@bp.get(PRODUCTS_PATH)
def products() -> Response:
    """1.1.1: authorized products by ProductId, one page, or just ``productId``."""
    state = current_state()
    config = state.config
    product_id = optional_int(lookup(request.args, "productId"), "productId")
    if product_id is not None:
        payload = state.catalog.served_product(product_id)
        items = [payload] if payload is not None and not _is_empty_page() else []
        data, extra = product_page(items, 1 if payload is not None else 0, config.quirks)
        return supplier_reply(data, code=0, ok=True, message="获取成功", extra=extra)
    page_index = required_int(lookup(request.args, "pageIndex"), "pageIndex")
    page_size = required_int(lookup(request.args, "pageSize"), "pageSize")
    if page_index < 1:
        raise Rejected("参数pageIndex必须大于等于1")
    if page_size < 1:
        raise Rejected("参数pageSize必须大于0")
    sources, total = state.catalog.page_sources(page_index, min(page_size, config.max_page_size))
    if _is_empty_page():
        sources = []
    texts = [
        state.served.text(pid, payload, corruption, config.quirks, config.camel_case)
        for pid, payload, corruption in sources
    ]
    data, extra = page_layout(PRODUCTS_SLOT if texts else [], total, config.quirks)
    return supplier_reply(
        data,
        code=0,
        ok=True,
        message="获取成功",
        extra=extra,
        products_json=f"[{','.join(texts)}]" if texts else None,
    )


@bp.get(PRICES_PATH)
def prices() -> Response:
    """1.1.2: the rules overlapping [StartTime, EndTime] and the sessions within it."""
    start = required_date(lookup(request.args, "StartTime"), "StartTime")
    end = required_date(lookup(request.args, "EndTime"), "EndTime")
    product_id = required_int(lookup(request.args, "productId"), "productId")
    if end < start:
        raise Rejected("结束时间不能早于开始时间")
    state = current_state()
    window = state.catalog.price_window(product_id, start, end)
    if window is None:
        raise Rejected("产品不存在或未授权")
    rules, seats = ([], []) if _is_empty_page() else window
    data = price_data(
        [rule.to_payload() for rule in rules],
        [seat.to_payload() for seat in seats],
        state.config.quirks,
        state.traffic.shape_rng,
    )
    return supplier_reply(data, code=0, ok=True, message="获取成功")


@bp.post("/order/Verify")
def verify() -> Response:
    """1.1.3: the verdict is the envelope itself."""
    current_state().orders.verify(parse_verify(_json_body()))
    return supplier_reply(None, code=0, ok=True, message="校验通过")


@bp.post("/order/Create")
def create() -> Response:
    """1.1.4: a new order awaiting payment."""
    data = current_state().orders.create(parse_create(_json_body()))
    return supplier_reply(data, code=1000, ok=True, message="下单成功")


@bp.post("/order/Pay")
def pay() -> Response:
    """1.1.5: pay, and get the entry codes back."""
    data = current_state().orders.pay(parse_pay(_json_body()))
    return supplier_reply(data, code=1, ok=True, message="处理成功")


@bp.get("/order/PersonQrCodes")
def person_qr_codes() -> Response:
    """1.1.6: visitors' entry codes by the distributor's order number."""
    origin = required_str(lookup(request.args, "originOrderId"), "originOrderId")
    data = current_state().orders.person_qr_codes(origin)
    return supplier_reply(data, code=0, ok=True, message="")


@bp.post("/order/Refund")
def refund() -> Response:
    """1.1.7: a refund application, reviewed later."""
    data = current_state().orders.apply_refund(parse_refund(_json_body()))
    return supplier_reply(data, code=1000, ok=True, message="退款申请成功，等待审核通知")


@bp.post("/order/CancelOrder")
def cancel() -> Response:
    """1.1.8: cancel an unpaid order (``orderId`` in the query, no body)."""
    order_id = required_int(lookup(request.args, "orderId"), "orderId")
    current_state().orders.cancel(order_id)
    return supplier_reply(None, code=0, ok=True, message="订单已取消")
