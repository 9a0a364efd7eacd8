"""The sandbox's back office under ``/_admin/``: truth, mutations, faults, orders, callbacks.

Loopback only: it can rewrite the catalog and read personal data from orders.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request

from supplier_sandbox.envelope import Rejected
from supplier_sandbox.replies import admin_reply, current_state
from supplier_sandbox.store import UnknownEntity

bp = Blueprint("sandbox_admin", __name__, url_prefix="/_admin")


def is_loopback(remote_addr: str | None) -> bool:
    """Whether a peer address is this machine (127.0.0.0/8, ::1, or IPv4-mapped loopback)."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@bp.before_request
def loopback_only() -> Response | None:
    """Refuse anyone not on this machine."""
    if not is_loopback(request.remote_addr):
        return admin_reply({"error": "admin interface is loopback only"}, 403)
    return None


@bp.errorhandler(UnknownEntity)
def unknown(error: UnknownEntity) -> Response:
    """A product, order or application that does not exist."""
    return admin_reply({"error": str(error.args[0] if error.args else error)}, 404)


@bp.errorhandler(ValueError)
@bp.errorhandler(TypeError)
@bp.errorhandler(KeyError)
def bad_request(error: Exception) -> Response:
    """A malformed admin call."""
    return admin_reply({"error": f"{type(error).__name__}: {error}"}, 400)


@bp.errorhandler(Rejected)
def refused(error: Rejected) -> Response:
    """A refusal raised by a shared order rule."""
    return admin_reply({"error": error.message}, 409)


def _body() -> Mapping[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _flag(body: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _day_arg(name: str) -> datetime.date | None:
    raw = request.args.get(name)
    return datetime.date.fromisoformat(raw) if raw else None


# -- settings and traffic ------------------------------------------------------------------


@bp.get("/settings")
def get_settings() -> Response:
    """Runtime settings."""
    return admin_reply(current_state().settings())


@bp.post("/settings")
def post_settings() -> Response:
    """Change latency_ms, fail_rate, max_page_size, callback_url, auto_issue, camel_case."""
    return admin_reply(current_state().update_settings(_body()))


@bp.get("/stats")
def stats() -> Response:
    """``{"total": n, "by_path": {path: n}}`` since the last reset."""
    return admin_reply(current_state().traffic.stats())


@bp.post("/stats/reset")
def reset_stats() -> Response:
    """Zero the request counts."""
    current_state().traffic.reset_stats()
    return admin_reply({"ok": True})


@bp.get("/faults")
def list_faults() -> Response:
    """Scripted faults with their seen and fired counts."""
    return admin_reply({"faults": current_state().traffic.faults()})


@bp.post("/faults")
def add_fault() -> Response:
    """Script a fault: ``{kind, path?, count?, after?, match?, hold_s?, message?}``."""
    return admin_reply(current_state().traffic.add_fault(_body()).to_json(), 201)


@bp.delete("/faults")
def clear_faults() -> Response:
    """Remove every fault, or only ``?id=``."""
    raw = request.args.get("id")
    removed = current_state().traffic.clear_faults(int(raw) if raw else None)
    return admin_reply({"removed": removed})


# -- products: truth ----------------------------------------------------------------------


@bp.get("/products")
def products() -> Response:
    """Uncorrupted payloads of every authorized product, by ProductId."""
    items = current_state().catalog.true_products()
    return admin_reply({"products": items, "total": len(items)})


@bp.get("/products/<int:product_id>")
def product(product_id: int) -> Response:
    """The true payload of any known product, with whether it is authorized."""
    catalog = current_state().catalog
    return admin_reply(
        {"product": catalog.product(product_id), "authorized": catalog.is_authorized(product_id)}
    )


@bp.get("/products/<int:product_id>/rules")
def rules(product_id: int) -> Response:
    """All of the product's price rules as the supplier lists them."""
    items = [rule.to_payload() for rule in current_state().catalog.rules(product_id)]
    return admin_reply({"product_id": product_id, "rules": items})


@bp.get("/products/<int:product_id>/calendar")
def calendar(product_id: int) -> Response:
    """The oracle's resolved days for ``?from=&to=`` (default: the next 90 days)."""
    days = current_state().catalog.calendar(product_id, _day_arg("from"), _day_arg("to"))
    return admin_reply({"product_id": product_id, "days": [day.to_json() for day in days]})


@bp.get("/products/<int:product_id>/seats")
def seats(product_id: int) -> Response:
    """The product's dated sessions for ``?from=&to=`` (default: the next 90 days)."""
    items = current_state().catalog.seats(product_id, _day_arg("from"), _day_arg("to"))
    return admin_reply({"product_id": product_id, "seats": [seat.to_payload() for seat in items]})


# -- products: mutations ------------------------------------------------------------------


@bp.post("/products/<int:product_id>/version")
def bump_version(product_id: int) -> Response:
    """Edit: ``{changes?: {Field: value}, notify?}``; Version goes up by one."""
    body = _body()
    changes = body.get("changes") or {}
    if not isinstance(changes, dict):
        raise ValueError("changes must be an object")
    updated = current_state().catalog.bump_version(
        product_id, changes, notify=_flag(body, "notify")
    )
    return admin_reply({"product": updated})


@bp.post("/products/<int:product_id>/reprice")
def reprice(product_id: int) -> Response:
    """Prices or stock without a Version bump: ``{rules?} | {delta?, daily_stock?}, notify?``."""
    body = _body()
    new_rules = current_state().catalog.reprice(
        product_id,
        rules=body.get("rules"),
        delta=body.get("delta"),
        daily_stock=None if body.get("daily_stock") is None else int(body["daily_stock"]),
        notify=_flag(body, "notify"),
    )
    return admin_reply({"product_id": product_id, "rules": [r.to_payload() for r in new_rules]})


@bp.post("/products/<int:product_id>/shelf")
def shelf(product_id: int) -> Response:
    """``{on_shelf: bool, notify?, bump?: true}``: ProductStatus 1 or 0."""
    body = _body()
    if "on_shelf" not in body:
        raise ValueError("on_shelf is required")
    updated = current_state().catalog.set_shelf(
        product_id,
        _flag(body, "on_shelf"),
        notify=_flag(body, "notify"),
        bump=_flag(body, "bump", True),
    )
    return admin_reply({"product": updated})


@bp.post("/products/<int:product_id>/deauthorize")
def deauthorize(product_id: int) -> Response:
    """Withdraw the product from the distributor: ``{notify?}``."""
    current_state().catalog.deauthorize(product_id, notify=_flag(_body(), "notify"))
    return admin_reply({"product_id": product_id, "authorized": False})


@bp.post("/products/<int:product_id>/reauthorize")
def reauthorize(product_id: int) -> Response:
    """Grant the product again: ``{notify?}``."""
    current_state().catalog.reauthorize(product_id, notify=_flag(_body(), "notify"))
    return admin_reply({"product_id": product_id, "authorized": True})


@bp.post("/products/add")
def add_products() -> Response:
    """``{count: n, notify?}``: new products after every existing ProductId."""
    body = _body()
    added = current_state().catalog.add_products(
        int(body.get("count", 1)), notify=_flag(body, "notify")
    )
    return admin_reply({"product_ids": added})


@bp.post("/products/<int:product_id>/corrupt")
def corrupt(product_id: int) -> Response:
    """Serve the product invalid: ``{mode: "version" | "missing_id"}``."""
    mode = str(_body().get("mode", "version"))
    current_state().catalog.corrupt(product_id, mode)
    return admin_reply({"product_id": product_id, "corrupt": mode})


@bp.post("/products/<int:product_id>/uncorrupt")
def uncorrupt(product_id: int) -> Response:
    """Serve the product's true payload again."""
    current_state().catalog.uncorrupt(product_id)
    return admin_reply({"product_id": product_id, "corrupt": None})


@bp.post("/drift/insert")
def drift_insert() -> Response:
    """Insert a product that sorts first, now."""
    return admin_reply({"product_id": current_state().catalog.drift_insert()})


@bp.post("/drift/remove")
def drift_remove() -> Response:
    """Deauthorize the first product in order, now."""
    return admin_reply({"product_id": current_state().catalog.drift_remove()})


@bp.get("/reprices")
def reprices() -> Response:
    """Silent repricing: ``{spec, rates: {id: per_s}, changes: [{product_id, at}]}``, ``?since=``."""
    raw = request.args.get("since")
    since = float(raw) if raw else None
    repricer = current_state().repricer
    if repricer is None:
        return admin_reply({"spec": None, "rates": {}, "changes": []})
    return admin_reply(repricer.snapshot(since))


# -- orders -------------------------------------------------------------------------------


@bp.get("/orders")
def orders() -> Response:
    """Every order, oldest first."""
    return admin_reply({"orders": current_state().orders.orders()})


@bp.get("/orders/<int:order_id>")
def order(order_id: int) -> Response:
    """One order."""
    return admin_reply({"order": current_state().orders.order(order_id)})


@bp.post("/orders/<int:order_id>/issue")
def issue(order_id: int) -> Response:
    """Issue tickets (``{ok: true}``) or fail to (``{ok: false}``); sends order_ticket_notify."""
    updated = current_state().orders.issue_tickets(order_id, ok=_flag(_body(), "ok", True))
    return admin_reply({"order": updated})


@bp.post("/orders/<int:order_id>/redeem")
def redeem(order_id: int) -> Response:
    """``{count: n}`` tickets used at the gate; sends order_verify_notify."""
    updated = current_state().orders.redeem(order_id, int(_body().get("count", 1)))
    return admin_reply({"order": updated})


@bp.post("/orders/<int:order_id>/force-refund")
def force_refund(order_id: int) -> Response:
    """``{count: n, reason?}``: a supplier-side refund (RefundApplyNo empty)."""
    body = _body()
    updated = current_state().orders.force_refund(
        order_id, int(body.get("count", 1)), str(body.get("reason", ""))
    )
    return admin_reply({"order": updated})


@bp.get("/refunds")
def refunds() -> Response:
    """Every refund application, oldest first."""
    return admin_reply({"refunds": current_state().orders.refund_applications()})


@bp.post("/refunds/<int:apply_id>/review")
def review(apply_id: int) -> Response:
    """``{approve: bool, reason?}``; sends order_refund_notify."""
    body = _body()
    if "approve" not in body:
        raise ValueError("approve is required")
    application = current_state().orders.review_refund(
        apply_id, approve=_flag(body, "approve"), reason=str(body.get("reason", ""))
    )
    return admin_reply({"refund": application})


# -- callbacks ----------------------------------------------------------------------------


@bp.get("/callbacks")
def deliveries() -> Response:
    """The delivery log: url, service, body, attempts, last status and reply."""
    return admin_reply({"deliveries": current_state().callbacks.deliveries()})


@bp.delete("/callbacks")
def clear_deliveries() -> Response:
    """Forget settled deliveries."""
    current_state().callbacks.clear_log()
    return admin_reply({"ok": True})


@bp.post("/callbacks/send")
def send_callback() -> Response:
    """Send any notification: ``{service, body: {...}}``."""
    body = _body()
    service = str(body.get("service") or "")
    payload = body.get("body")
    if not service or not isinstance(payload, dict):
        raise ValueError("service and an object body are required")
    delivery = current_state().callbacks.enqueue(
        current_state().config.callback_url, service, payload
    )
    return admin_reply({"delivery_id": delivery.id}, 202)


@bp.post("/callbacks/wait")
def wait_callbacks() -> Response:
    """Block until every delivery is settled: ``{timeout_s?: 5}`` → ``{settled: bool}``."""
    timeout = float(_body().get("timeout_s", 5.0))
    return admin_reply({"settled": current_state().callbacks.wait_settled(timeout)})
