"""``catalog-sync order ...``: place, pay, show, cancel and refund orders through the supplier.

Exit codes: 0 done, 1 refused (a check or the supplier said no; the message names the rule),
3 outcome unknown (a write's answer was lost: the order is reconciled, never sent again).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import click
from pydantic import ValidationError

from worker.orders.checks import Holder, OrderRequest

EXIT_REFUSED = 1
EXIT_UNKNOWN = 3
_EXIT = {"done": 0, "refused": EXIT_REFUSED, "unknown": EXIT_UNKNOWN}


def _holder(text: str, *, need_id: bool) -> Holder:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise click.BadParameter("expected NAME,MOBILE" + (",ID_NUMBER" if need_id else "[,ID]"))
    if need_id and (len(parts) < 3 or not parts[2]):
        raise click.BadParameter("expected NAME,MOBILE,ID_NUMBER")
    return Holder(name=parts[0], mobile=parts[1], id_number=parts[2] if len(parts) == 3 else None)


def _runtime() -> Any:
    from worker.cli import command_settings
    from worker.runtime import build_runtime

    return build_runtime(command_settings())


def _emit(outcome: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome.to_json(), ensure_ascii=False, indent=2))
    else:
        label = {"done": "ok", "refused": "refused", "unknown": "UNKNOWN"}[outcome.result]
        rule = f" [{outcome.rule}]" if outcome.rule else ""
        click.echo(f"{label}{rule}: {outcome.message}", err=outcome.result != "done")
        if outcome.order:
            _print_order(outcome.order)
        for code in outcome.extra.get("qr_codes", []):
            click.echo(f"  {code['name']}: {code['qr_code']}")
    sys.exit(_EXIT[outcome.result])


def _print_order(order: dict[str, Any]) -> None:
    click.echo(
        f"  {order['origin_order_id']}  order {order['order_id']}  {order['status']}"
        f"  product {order['product_id']}  {order['visit_date']}  x{order['quantity']}"
        f"  redeemed {order['redeemed_quantity']}  refunded {order['refunded_quantity']}"
        f"  unit {order['unit_price']}"
    )
    for voucher in order.get("vouchers", []):
        holder = voucher.get("holder") or {}
        who = " ".join(str(v) for v in holder.values() if v)
        click.echo(f"    voucher {voucher['voucher_code']}  {who}")


_BOOKING = [
    click.option("--product", "product_id", type=int, required=True),
    click.option("--date", "visit_date", type=click.DateTime(["%Y-%m-%d"]), required=True),
    click.option("--quantity", type=int, required=True),
    click.option("--contact", required=True, help="NAME,MOBILE[,ID_NUMBER]"),
    click.option("--visitor", "visitors", multiple=True, help="NAME,MOBILE,ID_NUMBER (repeat)"),
    click.option("--session", "session_code", default=None, help="the session's SeatsCode"),
    click.option("--origin-order-id", default=None, help="default: a new unique id"),
    click.option("--remark", default=None),
    click.option("--json", "as_json", is_flag=True),
]


def _booking(command: Any) -> Any:
    for option in reversed(_BOOKING):
        command = option(command)
    return command


def _request(
    product_id: int,
    visit_date: datetime,
    quantity: int,
    contact: str,
    visitors: tuple[str, ...],
    session_code: str | None,
    origin_order_id: str | None,
    remark: str | None,
) -> OrderRequest:
    from worker.orders.service import new_origin_order_id

    try:
        return _validated_request(
            product_id,
            visit_date,
            quantity,
            contact,
            visitors,
            session_code,
            origin_order_id or new_origin_order_id(),
            remark,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise click.UsageError(f"{where}: {first['msg']}") from None


def _validated_request(
    product_id: int,
    visit_date: datetime,
    quantity: int,
    contact: str,
    visitors: tuple[str, ...],
    session_code: str | None,
    origin_order_id: str,
    remark: str | None,
) -> OrderRequest:
    return OrderRequest(
        origin_order_id=origin_order_id,
        product_id=product_id,
        visit_date=date(visit_date.year, visit_date.month, visit_date.day),
        quantity=quantity,
        contact=_holder(contact, need_id=False),
        visitors=tuple(_holder(v, need_id=True) for v in visitors),
        session_code=session_code,
        remark=remark,
    )


@click.group()
def order() -> None:
    """Orders through the supplier: checked first, never sent twice, one ledger."""


def _book(use_case: Any, wanted: OrderRequest, as_json: bool) -> None:
    """Run ``verify`` or ``place`` for a booking over a runtime built for this command."""
    runtime = _runtime()
    try:
        outcome = use_case(
            runtime.sessions, runtime.supplier, wanted, use_verify=runtime.settings.order_verify
        )
    finally:
        runtime.close()
    _emit(outcome, as_json)


@order.command("verify")
@_booking
def verify_command(as_json: bool, **booking: Any) -> None:
    """Run every check (and the supplier's Verify unless ORDER_VERIFY=false); place nothing."""
    from worker.orders.service import verify

    _book(verify, _request(**booking), as_json)


@order.command("create")
@_booking
def create_command(as_json: bool, **booking: Any) -> None:
    """Check, verify and create an order (Create is sent once)."""
    from worker.orders.service import place

    _book(place, _request(**booking), as_json)


def _by_origin(name: str, help_text: str) -> Callable[[Callable[..., None]], click.Command]:
    def decorate(function: Callable[..., None]) -> click.Command:
        function = click.option("--json", "as_json", is_flag=True)(function)
        function = click.argument("origin_order_id")(function)
        return order.command(name, help=help_text)(function)

    return decorate


def _call(use_case: Any, origin_order_id: str, as_json: bool) -> None:
    """Run one order use case over a runtime built for this command, then print its outcome."""
    runtime = _runtime()
    try:
        outcome = use_case(runtime.sessions, runtime.supplier, origin_order_id)
    finally:
        runtime.close()
    _emit(outcome, as_json)


@_by_origin("pay", "Pay an order awaiting payment (never an unknown or paid one).")
def pay_command(origin_order_id: str, as_json: bool) -> None:
    from worker.orders.service import pay

    _call(pay, origin_order_id, as_json)


@_by_origin("cancel", "Cancel an order awaiting payment.")
def cancel_command(origin_order_id: str, as_json: bool) -> None:
    from worker.orders.service import cancel

    _call(cancel, origin_order_id, as_json)


@_by_origin("qrcodes", "The visitors' entry codes (PersonQrCodes); reconciles an unknown order.")
def qrcodes_command(origin_order_id: str, as_json: bool) -> None:
    from worker.orders.service import qr_codes

    _call(qr_codes, origin_order_id, as_json)


@_by_origin("show", "One order: status, quantities, vouchers (masked) and its history.")
def show_command(origin_order_id: str, as_json: bool) -> None:
    from worker.orders.service import Outcome, show

    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            view = show(session, origin_order_id)
    finally:
        runtime.close()
    if view is None:
        _emit(Outcome("refused", f"no order {origin_order_id}", "order_known"), as_json)
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    assert view is not None
    _print_order(view)
    for event in view["history"]:
        click.echo(
            f"    {event['at']}  {event['source']:<9} {event['action']:<18} "
            f"{event['from'] or '-'} -> {event['to'] or '-'}  ({event['outcome']})"
        )


@order.command("refund")
@click.argument("origin_order_id")
@click.option("--count", type=int, required=True)
@click.option("--voucher", "vouchers", multiple=True, help="a voucher code to refund (repeat)")
@click.option("--json", "as_json", is_flag=True)
def refund_command(
    origin_order_id: str, count: int, vouchers: tuple[str, ...], as_json: bool
) -> None:
    """Apply for a refund of COUNT tickets (a new, unique RefundId)."""
    from worker.orders.service import refund

    runtime = _runtime()
    try:
        outcome = refund(runtime.sessions, runtime.supplier, origin_order_id, count, vouchers)
    finally:
        runtime.close()
    _emit(outcome, as_json)


@order.command("list")
@click.option("--status", default=None, help="e.g. unknown, awaiting_payment, issued")
@click.option("--json", "as_json", is_flag=True)
def list_command(status: str | None, as_json: bool) -> None:
    """Orders placed here, oldest first (``--status unknown``: what needs reconciling)."""
    from worker.orders.service import list_orders

    runtime = _runtime()
    items: list[dict[str, Any]] = []
    try:
        with runtime.sessions() as session:
            cursor = 0
            while True:
                page, following = list_orders(session, status=status, cursor=cursor, limit=500)
                items.extend(page)
                if following is None:
                    break
                cursor = following
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps({"orders": items}, ensure_ascii=False, indent=2))
        return
    for item in items:
        step = f" ({item['unknown_step']} answer lost)" if item["unknown_step"] else ""
        click.echo(
            f"{item['origin_order_id']}  order {item['order_id']}  {item['status']}{step}"
            f"  product {item['product_id']}  {item['visit_date']}  x{item['quantity']}"
        )
    click.echo(f"{len(items)} order(s)", err=True)
