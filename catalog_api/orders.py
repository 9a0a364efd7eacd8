"""Orders through the supplier, for the distributor's own systems (same token as the catalog).

``POST /orders`` places, ``POST /orders/{id}/pay|cancel|refund`` move, ``GET /orders/{id}`` and
``GET /orders`` read. Views only parse, check and hand off to ``worker.orders.service``.
Answers: 201 (created) or 200 done, 422 refused (``rule`` names it), 202 outcome unknown
(reconciled, never sent again), 503 when this app has no supplier settings.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog_api.context import db, state
from catalog_api.params import (
    BadParameter,
    decode_cursor,
    encode_cursor,
    parse_limit,
    parse_updated_since,
)
from worker.orders import lifecycle
from worker.orders.checks import Holder, OrderRequest

bp = Blueprint("orders", __name__, url_prefix="/orders")
_SUPPLIER_LOCK = threading.Lock()
_STATUS = {"done": 200, "refused": 422, "unknown": 202}


class _NewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(ge=0, le=2**63 - 1)
    visit_date: Any
    quantity: int = Field(ge=-(2**31), le=2**31 - 1)
    contact: Holder
    visitors: list[Holder] = Field(default_factory=list)
    session_code: str | None = None
    origin_order_id: str | None = Field(default=None, min_length=1, max_length=64)
    remark: str | None = None


class _Refund(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=-(2**31), le=2**31 - 1)
    vouchers: list[str] = Field(default_factory=list)


def _body(model: type[BaseModel]) -> Any:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise BadParameter("the body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadParameter(f"{where}: {first['msg']}") from None


def _supplier() -> Any:
    """The supplier client of this app, made on first use; None without supplier settings."""
    from worker.settings import Settings

    extensions = current_app.extensions
    with _SUPPLIER_LOCK:
        if "orders_supplier" not in extensions:
            settings = state().settings
            client = None
            if isinstance(settings, Settings):
                from worker.supplier.client import SupplierClient

                client = SupplierClient.from_settings(settings)
            extensions["orders_supplier"] = client
    return extensions["orders_supplier"]


def _unavailable() -> tuple[Response, int]:
    body = {"error": "orders_unavailable", "message": "this API has no supplier settings"}
    return jsonify(body), 503


def _reply(outcome: Any, done_status: int = 200) -> tuple[Response, int]:
    status = done_status if outcome.result == "done" else _STATUS[outcome.result]
    return jsonify(outcome.to_json()), status


def _use_verify() -> bool:
    return bool(getattr(state().settings, "order_verify", True))


@bp.post("")
def create_order() -> tuple[Response, int]:
    from worker.orders.service import new_origin_order_id, place

    body = _body(_NewOrder)
    try:
        order = OrderRequest(
            origin_order_id=body.origin_order_id or new_origin_order_id(),
            product_id=body.product_id,
            visit_date=body.visit_date,
            quantity=body.quantity,
            contact=body.contact,
            visitors=tuple(body.visitors),
            session_code=body.session_code,
            remark=body.remark,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadParameter(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    supplier = _supplier()
    if supplier is None:
        return _unavailable()
    return _reply(place(state().sessions, supplier, order, use_verify=_use_verify()), 201)


@bp.post("/<origin_order_id>/pay")
def pay_order(origin_order_id: str) -> tuple[Response, int]:
    from worker.orders.service import pay

    supplier = _supplier()
    if supplier is None:
        return _unavailable()
    return _reply(pay(state().sessions, supplier, origin_order_id))


@bp.post("/<origin_order_id>/cancel")
def cancel_order(origin_order_id: str) -> tuple[Response, int]:
    from worker.orders.service import cancel

    supplier = _supplier()
    if supplier is None:
        return _unavailable()
    return _reply(cancel(state().sessions, supplier, origin_order_id))


@bp.post("/<origin_order_id>/refund")
def refund_order(origin_order_id: str) -> tuple[Response, int]:
    from worker.orders.service import refund

    body = _body(_Refund)
    supplier = _supplier()
    if supplier is None:  # before the refund batch is written: nothing to reconcile later
        return _unavailable()
    return _reply(refund(state().sessions, supplier, origin_order_id, body.count, body.vouchers))


@bp.get("/<origin_order_id>")
def get_order(origin_order_id: str) -> Response:
    from worker.orders.service import show

    found = show(db(), origin_order_id)
    if found is None:
        abort(404, f"no order {origin_order_id}")
    return jsonify(found)


@bp.get("")
def list_orders() -> Response:
    from worker.orders.service import list_orders as listing

    args = request.args
    wanted = args.get("status")
    if wanted is not None and wanted not in lifecycle.STATUSES:
        raise BadParameter(f"status must be one of {', '.join(lifecycle.STATUSES)}")
    items, following = listing(
        db(),
        status=wanted,
        updated_since=parse_updated_since(args.get("updated_since")),
        cursor=decode_cursor(args.get("cursor")) or 0,
        limit=parse_limit(args.get("limit")),
    )
    return jsonify(
        {"orders": items, "next_cursor": None if following is None else encode_cursor(following)}
    )
