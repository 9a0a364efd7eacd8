"""Builders for callback tests: the contract's sample bodies, signed requests, a loopback server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from callbacks.processing import Catalog, process_message
from models.base import utcnow
from models.inbox import InboxMessage
from worker.coalesce import LocalCoalescer
from worker.supplier.signing import auth_headers

PARTNER_ID = 9258
SIGN_KEY = "zzy-sandbox-signkey"
PATH = "/callbacks/zzy"
ID_NUMBER = "36220163556666666"
MOBILE = "18106532623"

SAMPLES: dict[str, dict[str, Any]] = {
    "order_refund_notify": {
        "OrderId": 4553010,
        "RefundApplyNo": "1522870740750303232",
        "RefundStatus": 2,
        "RefundReason": " ",
        "VoucherCode": [],
    },
    "order_verify_notify": {
        "TicketStatus": 1,
        "OriginOrderId": "1522870633233514497",
        "OrderId": 4553010,
        "VoucherCode": [],
        "OrderTotal": 2,
        "CheckedNumber": 2,
        "VoucherType": 1,
    },
    "order_ticket_notify": {
        "OriginOrderId": "1522870633233514497",
        "OrderId": 4553010,
        "VoucherCode": {
            "OrderVoucherCode": "202052255633322222124",
            "OrderUserVouchers": [
                {"IDCardNo": ID_NUMBER, "VoucherCode": "2020522556333222221-2", "Mobile": MOBILE}
            ],
        },
        "TicketStatus": 1,
    },
    "order_product_notify": {"ProductId": 11063, "Status": 1},
}


def envelope(
    service: str, body: Any, *, as_string: bool = True, partner_id: int = PARTNER_ID
) -> dict[str, Any]:
    return {
        "OrderNotifyHeader": {"PartnerId": partner_id, "NotifyServiceName": service},
        "OrderNotifyBody": json.dumps(body, ensure_ascii=False) if as_string else body,
    }


def signed(
    path: str = PATH,
    *,
    timestamp_ms: int | None = None,
    partner_id: int = PARTNER_ID,
    key: str = SIGN_KEY,
) -> dict[str, str]:
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    headers = auth_headers(partner_id, key, path, stamp)
    headers["Content-Type"] = "application/json"
    return headers


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` threaded on a free loopback port; yields its base URL."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def post(
    url: str, payload: Any, headers: dict[str, str] | None = None, **kw: Any
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else encode(payload)
    return httpx.post(
        url + PATH, content=body, headers=headers or signed(), timeout=10, trust_env=False, **kw
    )


def wait_for(predicate: Any, timeout_s: float = 15.0, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


def post_chunked(base_url: str, first: bytes, total: int, headers: dict[str, str]) -> int:
    """POST ``total`` bytes with chunked transfer encoding (``first``, then padding); the status."""
    import http.client

    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", PATH)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        for start in range(0, total, 4096):
            piece = first[:4096] if start == 0 else b" " * 4096
            connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        connection.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered and closed before the rest was sent: it did not read it all
    status = connection.getresponse().status
    connection.close()
    return status


class Sent:
    """A fake broker: records what the app would publish (ids only)."""

    def __init__(self) -> None:
        self.ids: list[Any] = []

    def __call__(self, inbox_id: int) -> None:
        self.ids.append(inbox_id)


def inbox_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(InboxMessage)) or 0)


class Stamps:
    """Distinct millisecond timestamps that stay current however long the suite runs (each
    delivery signed at its own millisecond: a fresh signature). They run a minute behind the
    clock, well inside the accepted window, so they never meet ``signed()``'s own stamps."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __next__(self) -> int:
        with self._lock:
            self._last = max(int(time.time() * 1000) - 60_000, self._last + 1)
            return self._last

    def __iter__(self) -> Stamps:
        return self


class FakeCatalog:
    """Records what the catalog sync was asked to do; can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, int, Any]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def _record(self, name: str, pid: int, extra: Any = None) -> None:
        with self._lock:
            self.calls.append((name, pid, extra))
        if self.fail:
            raise RuntimeError(f"supplier down; id card {ID_NUMBER}")

    def port(self) -> Catalog:
        return Catalog(
            set_shelf_status=lambda pid, status: self._record("shelf", pid, status),
            refresh_product=lambda pid: self._record("product", pid),
            refresh_prices=lambda pid: self._record("prices", pid),
            queue_product_refresh=lambda pid: self._record("queue-product", pid),
        )


def receive(app: Flask, service: str, body: dict[str, Any], sent: Sent) -> int:
    """Deliver a notice signed at a distinct millisecond (a product notice per delivery)."""
    headers = signed(timestamp_ms=next(stamps))
    reply = app.test_client().post(PATH, data=encode(envelope(service, body)), headers=headers)
    assert reply.status_code == 200, reply.get_json()
    return int(sent.ids[-1])


class Publisher:
    """A fake broker for trailing refreshes: records (inbox id, delay); can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.published: list[tuple[int, float]] = []
        self.fail = fail

    def __call__(self, inbox_id: int, delay_s: float) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.published.append((inbox_id, delay_s))


def run(
    sessions: sessionmaker[Session],
    inbox_id: int,
    catalog: FakeCatalog | None = None,
    coalescer: Any = None,
    window_s: float = 0.0,
    max_attempts: int = 3,
    publisher: Publisher | None = None,
    now: Any = utcnow,
) -> Any:
    return process_message(
        sessions,
        inbox_id,
        catalog=(catalog or FakeCatalog()).port(),
        coalescer=coalescer or LocalCoalescer(),
        window_s=window_s,
        max_attempts=max_attempts,
        follow_up=publisher or Publisher(),
        secrets=["zzy-sandbox-signkey"],
        now=now,
    )


def deliver(url: str, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        url + PATH,
        content=body_of(payload),
        headers=headers or signed(timestamp_ms=next(stamps)),
        timeout=10,
        trust_env=False,
    )


def rows(sessions: sessionmaker[Session]) -> list[InboxMessage]:
    with sessions() as session:
        return list(session.scalars(select(InboxMessage).order_by(InboxMessage.id)))


def cli_env(settings: Any) -> dict[str, str]:
    """The environment ``catalog-sync status`` reads its settings from."""
    return {
        "ZZY_BASE_URL": settings.zzy_base_url,
        "ZZY_PARTNER_ID": str(settings.zzy_partner_id),
        "ZZY_SIGN_KEY": settings.zzy_sign_key.get_secret_value(),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": "",
    }


stamps = Stamps()


def body_of(payload: Any) -> bytes:
    """JSON with non-ASCII escaped: a lone surrogate or a NUL travels as ``\\ud800``/``\\u0000``."""
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()
