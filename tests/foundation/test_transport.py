"""The stdlib transport (``worker.supplier.transport``) against scripted servers on loopback.

Each server here is a raw socket that answers as the test tells it, so the transport is judged
on the bytes: connections kept and reused, a connection the server closed while idle replaced
without an error, and each failure surfacing as the httpx exception the client maps.
"""

from __future__ import annotations

import datetime
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support.sync import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY
from worker.settings import Settings
from worker.supplier.client import SupplierClient, proxied
from worker.supplier.errors import SupplierOutcomeUnknown, SupplierUnavailable
from worker.supplier.payloads import PriceCalendar, VerifyOrderRequest
from worker.supplier.transport import StdlibTransport

# (request bytes, connection) -> answer bytes, or None to drop the connection unanswered.
Script = Callable[[bytes, int], bytes | None]

OK_BODY = b'{"ok": true}'


def answer(body: bytes = OK_BODY, *, close: bool = False, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: %d\r\n" % len(body) + extra
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


class ScriptedServer:
    """Accepts connections and answers each request by ``script``; records what it saw."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.accepted = 0
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            number = self.accepted
            threading.Thread(target=self._serve, args=(connection, number), daemon=True).start()

    def _serve(self, connection: socket.socket, number: int) -> None:
        with connection:
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, rest = buffered.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += connection.recv(65536)
                request, buffered = head + b"\r\n\r\n" + rest[:length], rest[length:]
                self.requests.append(request)
                reply = self.script(request, number)
                if reply is None:
                    return
                connection.sendall(reply)
                if b"Connection: close" in reply or b"X-Then-Close" in reply:
                    return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@contextmanager
def scripted(script: Script) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def http_client(url: str, **timeout: float) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=url,
        transport=StdlibTransport(),
        timeout=httpx.Timeout(timeout.get("read", 5.0), connect=timeout.get("connect", 2.0)),
    ) as client:
        yield client


def test_connections_are_kept_and_reused() -> None:
    with scripted(lambda request, n: answer()) as server, http_client(server.url) as client:
        replies = [client.get("/x", params={"i": i}) for i in range(5)]
    assert [r.json() for r in replies] == [{"ok": True}] * 5
    assert server.accepted == 1
    assert server.requests[3].startswith(b"GET /x?i=3 HTTP/1.1\r\n")


def test_a_connection_closed_by_the_server_while_idle_is_replaced() -> None:
    with scripted(lambda request, n: answer(close=True)) as server, http_client(server.url) as c:
        first, second = c.get("/a"), c.get("/b")
    assert first.status_code == second.status_code == 200
    assert server.accepted == 2


def test_an_idle_connection_the_server_closed_silently_is_not_reused() -> None:
    """A gateway's idle timeout: the connection closes after an answer that did not say so."""
    quiet_close = answer(extra=b"X-Then-Close: 1\r\n")
    with scripted(lambda request, n: quiet_close) as server, http_client(server.url) as client:
        assert client.get("/a").status_code == 200
        time.sleep(0.2)  # the close reaches the idle connection
        assert client.get("/b").status_code == 200
    assert server.accepted == 2


def test_body_headers_and_duplicate_headers_go_out_as_given() -> None:
    with scripted(lambda request, n: answer()) as server, http_client(server.url) as client:
        client.post(
            "/order",
            content=b'{"a": 1}',
            headers=[("X-Twice", "1"), ("X-Twice", "2"), ("Content-Type", "application/json")],
        )
    sent = server.requests[0]
    assert sent.startswith(b"POST /order HTTP/1.1\r\n")
    assert sent.endswith(b'\r\n\r\n{"a": 1}')
    assert b"Content-Length: 8\r\n" in sent
    assert sent.count(b"X-Twice:") == 2
    assert sent.count(b"Host:") == 1


def test_gzip_and_chunked_answers_are_decoded() -> None:
    packed = gzip.compress(b'{"zipped": 1}')
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n 2}\r\n0\r\n\r\n'
    )

    def script(request: bytes, number: int) -> bytes:
        if request.startswith(b"GET /zip"):
            return answer(packed, extra=b"Content-Encoding: gzip\r\n")
        return chunked

    with scripted(script) as server, http_client(server.url) as client:
        assert client.get("/zip").json() == {"zipped": 1}
        assert client.get("/chunks").json() == {"a": 2}
        assert client.get("/zip").json() == {"zipped": 1}
    assert server.accepted == 1


def test_interim_answers_are_skipped_and_trailers_read() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b'4;ext=1\r\n{"a"\r\n4\r\n: 1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    with scripted(lambda request, n: interim + chunked + body) as server:
        with http_client(server.url) as client:
            replies = [client.get("/x").json() for _ in range(3)]
    assert replies == [{"a": 1}] * 3
    assert server.accepted == 1


@pytest.mark.parametrize(
    ("reply", "kept"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}", True),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 2\r\n\r\n{}", False),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n", True),
    ],
    ids=["http-1.0", "http-1.0-keep-alive", "close-among-tokens", "204-without-body"],
)
def test_whether_a_connection_is_kept_follows_the_answer(reply: bytes, kept: bool) -> None:
    # The scripted server closes after an answer holding "X-Then-Close" (past the body here).
    close_after = reply + (b"" if kept else b"X-Then-Close")

    def script(request: bytes, number: int) -> bytes:
        return reply if kept else close_after

    with scripted(script) as server, http_client(server.url) as client:
        statuses = [client.get("/x").status_code for _ in range(2)]
    assert statuses[0] == statuses[1] in (200, 204)
    assert server.accepted == (1 if kept else 2)


def test_an_answer_without_a_length_ends_at_the_close() -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b'{"long": "' + b"x" * 70000 + b'"}'
    with scripted(lambda request, n: reply) as server, http_client(server.url) as client:
        assert len(client.get("/x").json()["long"]) == 70000
        assert len(client.get("/x").json()["long"]) == 70000
    assert server.accepted == 2


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",  # closed inside the headers
    ],
    ids=[
        "two-lengths",
        "negative-length",
        "bad-chunk-size",
        "not-http",
        "bad-status",
        "header-without-colon",
        "too-many-headers",
        "header-too-long",
        "cut-headers",
    ],
)
def test_a_malformed_answer_is_a_protocol_error(reply: bytes) -> None:
    with scripted(lambda request, n: reply + b"X-Then-Close") as server:
        with http_client(server.url) as client, pytest.raises(httpx.RemoteProtocolError):
            client.get("/x")


def test_a_line_break_in_a_header_is_refused_before_sending() -> None:
    with scripted(lambda request, n: answer()) as server, http_client(server.url) as client:
        transport = client._transport
        assert isinstance(transport, StdlibTransport)
        with pytest.raises(httpx.LocalProtocolError):
            transport.exchange(
                "GET",
                ("http", "127.0.0.1", int(server.url.rsplit(":", 1)[1])),
                b"/x",
                [(b"X-Evil", b"1\r\nX-Injected: 2")],
                b"",
                {},
            )
    assert server.requests == []


def test_a_dropped_answer_is_a_protocol_error() -> None:
    with scripted(lambda request, n: None) as server, http_client(server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/x")


def test_a_cut_body_is_a_protocol_error() -> None:
    cut = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{"Data"'
    with scripted(lambda request, n: cut) as server, http_client(server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/x")


def test_a_slow_answer_is_a_read_timeout() -> None:
    release = threading.Event()

    def script(request: bytes, number: int) -> bytes:
        release.wait(5)
        return answer()

    with scripted(script) as server, http_client(server.url, read=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/x")
        release.set()


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with http_client(f"http://127.0.0.1:{port}") as client, pytest.raises(httpx.ConnectError):
        client.get("/x")


@pytest.mark.parametrize("direct", [False, True], ids=["through-httpx-client", "direct"])
def test_the_client_maps_transport_failures_as_before(direct: bool) -> None:
    """Reads are retried as unavailable; a write whose answer is lost is an unknown outcome."""
    transport = StdlibTransport()
    with scripted(lambda request, n: None) as server:
        supplier = SupplierClient(
            httpx.Client(base_url=server.url, transport=transport, timeout=2.0),
            partner_id=SANDBOX_PARTNER_ID,
            sign_key=SANDBOX_SIGN_KEY,
            read_retries=1,
            sleep=lambda _: None,
            direct=transport if direct else None,
        )
        with supplier:
            with pytest.raises(SupplierUnavailable):
                supplier.get_product(1)
            with pytest.raises(SupplierOutcomeUnknown):
                supplier.cancel_order(7)
        assert len(server.requests) == 3  # two attempts of the read, one of the write
    assert server.requests[0].startswith(b"GET /product/getProductByDistributor?pageIndex=1&")
    assert b"\r\nUser-Agent: python-httpx/" in server.requests[0]
    assert b"\r\nAuthorization: Bearer ZZY-OPENAPI:" in server.requests[0]


def test_direct_requests_carry_what_the_httpx_client_would_send() -> None:
    """The same request line, headers and body either way (the signature's timestamp aside)."""
    sent: dict[bool, list[bytes]] = {}
    for direct in (False, True):
        transport = StdlibTransport()
        with scripted(lambda request, n: answer(b'{"IsSuccess": true, "Data": null}')) as server:
            supplier = SupplierClient(
                httpx.Client(base_url=server.url + "/api", transport=transport, timeout=2.0),
                partner_id=SANDBOX_PARTNER_ID,
                sign_key=SANDBOX_SIGN_KEY,
                clock=lambda: 1_700_000_000.0,
                direct=transport if direct else None,
            )
            with supplier:
                supplier.person_qr_codes("A 1/é")
                supplier.cancel_order(7)
                supplier.verify_order(
                    VerifyOrderRequest(
                        product_id=5, visit_date=datetime.date(2026, 12, 1), order_users=[]
                    )
                )
            sent[direct] = [_without_port(r) for r in server.requests]
    assert sent[True] == sent[False]
    assert len(sent[True]) == 3 and sent[True][2].endswith(b'"OrderUsers": []}')
    assert sent[True][0].startswith(b"GET /api/order/PersonQrCodes?originOrderId=A+1%2F%C3%A9 ")


def _without_port(request: bytes) -> bytes:
    return b"\r\n".join(
        line for line in request.split(b"\r\n") if not line.lower().startswith(b"host:")
    )


def test_a_proxied_supplier_goes_through_the_httpx_client(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SupplierClient.from_settings(settings) as plain:
        assert plain._direct is not None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert proxied("http://supplier.example/api")
    with SupplierClient.from_settings(settings) as through_proxy:
        assert through_proxy._direct is None
    monkeypatch.setenv("NO_PROXY", "supplier.example")
    assert not proxied("http://supplier.example/api")


def test_from_settings_uses_it_against_the_sandbox(settings: Settings) -> None:
    assert settings.http_transport == "stdlib"
    today = datetime.date.today()
    with SupplierClient.from_settings(settings) as supplier:
        assert isinstance(supplier._http._transport, StdlibTransport)
        products = supplier.list_products()
        calendars = [
            supplier.get_price_calendar(p.product_id, today, today + datetime.timedelta(days=6))
            for p in products[:5]
        ]
    assert len(products) == 30
    assert all(isinstance(c, PriceCalendar) for c in calendars)
