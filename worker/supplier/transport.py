"""An httpx transport over the standard library's ``http.client``, with kept-alive connections.

The sync sends one small request per product (a price calendar), so what each request costs
the client's CPU bounds a full sync at low latency. httpx's default transport (httpcore over
h11, pure Python) spends about twice what ``http.client`` does on the same exchange; this
transport keeps httpx's API, timeouts, decoding and exceptions, and only swaps how the bytes
move: HTTP/1.1, one request per connection at a time, idle connections reused.

Errors are httpx's own, mapped from what ``http.client`` and the socket raise: a connection
that cannot be opened is ``ConnectError``/``ConnectTimeout`` (nothing was sent), a timeout
while waiting for the answer ``ReadTimeout``, a connection dropped mid-exchange
``RemoteProtocolError`` or ``ReadError``/``WriteError``. A pooled connection the server has
closed while idle is noticed before reuse and replaced, so it never fails a request.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

__all__ = ["StdlibTransport"]

_Key = tuple[str, str, int]


class StdlibTransport(httpx.BaseTransport):
    """HTTP/1.1 through ``http.client``; at most ``max_idle`` idle connections kept per host."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, max_idle: int = 16) -> None:
        if isinstance(verify, ssl.SSLContext):
            self._ssl = verify
        else:
            self._ssl = ssl.create_default_context()
            if not verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._max_idle = max_idle
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        key = (request.url.scheme, request.url.host, request.url.port or _default_port(request))
        connection = self._checkout(key, timeouts.get("connect"))
        body = request.read()
        try:
            with _mapped(connect_phase=True):
                if connection.sock is None:
                    connection.connect()
            connection.sock.settimeout(timeouts.get("read"))
            with _mapped():
                connection.putrequest(
                    request.method,
                    request.url.raw_path.decode("ascii"),
                    skip_host=True,
                    skip_accept_encoding=True,
                )
                for name, value in request.headers.raw:
                    connection.putheader(name, value)
                if body and "content-length" not in request.headers:
                    connection.putheader(b"Content-Length", str(len(body)).encode("ascii"))
                connection.endheaders(body or None)
                answer = connection.getresponse()
                content = answer.read()
        except BaseException:
            connection.close()
            raise
        if answer.will_close:
            connection.close()
        else:
            self._checkin(key, connection)
        return httpx.Response(
            answer.status,
            headers=answer.getheaders(),
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason.encode()},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pooled = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in pooled:
            connection.close()

    def _checkout(self, key: _Key, connect_timeout: float | None) -> http.client.HTTPConnection:
        """An idle connection still open, or a new (unconnected) one."""
        while True:
            with self._lock:
                pooled = self._idle.get(key)
                connection = pooled.pop() if pooled else None
            if connection is None:
                break
            if not _closed_by_peer(connection):
                return connection
            connection.close()
        scheme, host, port = key
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=connect_timeout, context=self._ssl
            )
        return http.client.HTTPConnection(host, port, timeout=connect_timeout)

    def _checkin(self, key: _Key, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            pooled = self._idle.setdefault(key, [])
            if not self._closed and len(pooled) < self._max_idle:
                pooled.append(connection)
                return
        connection.close()


def _default_port(request: httpx.Request) -> int:
    return 443 if request.url.scheme == "https" else 80


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is readable only when the server closed it (or sent garbage)."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


@contextmanager
def _mapped(*, connect_phase: bool = False) -> Iterator[None]:
    """Socket and ``http.client`` errors as httpx's exceptions (what ``SupplierClient`` maps)."""
    try:
        yield
    except TimeoutError as exc:
        raise (httpx.ConnectTimeout if connect_phase else httpx.ReadTimeout)(str(exc)) from exc
    except (http.client.RemoteDisconnected, http.client.IncompleteRead) as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc
    except http.client.HTTPException as exc:
        raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
    except ssl.SSLError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    except OSError as exc:
        if connect_phase:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        if isinstance(exc, BrokenPipeError):
            raise httpx.WriteError(str(exc)) from exc
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
