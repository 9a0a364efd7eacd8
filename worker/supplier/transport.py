"""An httpx transport speaking HTTP/1.1 over the standard library's sockets, connections kept alive.

The sync sends one small request per product (a price calendar), so what each request costs
the client's CPU bounds a full sync at low latency. httpx's default transport (httpcore over
h11, pure Python) spends about twice what ``http.client`` does on the same exchange, and
``http.client`` itself spends a third of its time parsing the answer's headers with the
``email`` package. This transport keeps httpx's API, timeouts, decoding and exceptions, and
only swaps how the bytes move: one write per request, the answer read through a buffered
reader (status line, header lines, then a ``Content-Length`` or chunked body, or up to the
close), one request per connection at a time, idle connections reused.

Errors are httpx's own: a connection that cannot be opened is ``ConnectError`` or
``ConnectTimeout`` (nothing was sent), a timeout while waiting for the answer ``ReadTimeout``,
an answer that is cut, malformed or missing ``RemoteProtocolError``, a socket failure
``ReadError`` or ``WriteError``. A pooled connection the server has closed while idle is
noticed before reuse and replaced, so it never fails a request.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from io import BufferedReader

import httpx

__all__ = ["StdlibTransport", "origin_of"]

_Key = tuple[str, str, int]

# Limits on what a server may send before the body (http.client's own).
_MAX_LINE = 65536
_MAX_HEADERS = 100
# Answers without a body whatever their headers say (RFC 9112, section 6.3).
_BODYLESS = frozenset({204, 304})


class _Connection:
    """One socket and the buffered reader over it (the reader keeps what was read ahead)."""

    __slots__ = ("reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: BufferedReader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def closed_by_peer(self) -> bool:
        """An idle connection is readable only when the server closed it (or sent garbage)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class StdlibTransport(httpx.BaseTransport):
    """HTTP/1.1 over plain sockets; at most ``max_idle`` idle connections kept per host."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, max_idle: int = 16) -> None:
        if isinstance(verify, ssl.SSLContext):
            self._ssl = verify
        else:
            self._ssl = ssl.create_default_context()
            if not verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._max_idle = max_idle
        self._idle: dict[_Key, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = origin_of(url)
        body = request.read()
        headers = request.headers.raw
        if body and "content-length" not in request.headers:
            # A streamed body, read whole here: sent with its length instead of in chunks.
            headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
            headers.append((b"Content-Length", b"%d" % len(body)))
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        return self.exchange(request.method, origin, url.raw_path, headers, body, timeouts)

    def exchange(
        self,
        method: str,
        origin: _Key,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> httpx.Response:
        """Send ``method target`` with exactly these header lines and body to ``origin``
        (scheme, host, port); the answer with its body read (and not yet decoded)."""
        head = _request_head(method, target, headers)
        connection = self._checkout(origin, timeouts.get("connect"))
        try:
            connection.sock.settimeout(timeouts.get("read"))
            with _mapped():
                connection.sock.sendall(head + body if body else head)
                status, reason, answer, content, keep = _read_answer(connection.reader, method)
        except BaseException:
            connection.close()
            raise
        if keep:
            self._checkin(origin, connection)
        else:
            connection.close()
        return httpx.Response(
            status,
            headers=answer,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pooled = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in pooled:
            connection.close()

    def _checkout(self, key: _Key, connect_timeout: float | None) -> _Connection:
        """An idle connection still open, or a new one."""
        while True:
            with self._lock:
                pooled = self._idle.get(key)
                connection = pooled.pop() if pooled else None
            if connection is None:
                break
            if not connection.closed_by_peer():
                return connection
            connection.close()
        return self._connect(key, connect_timeout)

    def _connect(self, key: _Key, timeout: float | None) -> _Connection:
        scheme, host, port = key
        with _mapped(connect_phase=True):
            sock = socket.create_connection((host, port), timeout)
            try:
                # Each request is one write: without this, Nagle's algorithm and the server's
                # delayed ACK can hold a small write back for 40 ms.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == "https":
                    sock = self._ssl.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        return _Connection(sock)

    def _checkin(self, key: _Key, connection: _Connection) -> None:
        with self._lock:
            pooled = self._idle.setdefault(key, [])
            if not self._closed and len(pooled) < self._max_idle:
                pooled.append(connection)
                return
        connection.close()


def origin_of(url: httpx.URL) -> _Key:
    """Scheme, host and port (the scheme's default when the URL names none): a pool's key."""
    return (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))


def _request_head(method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The request line and header lines."""
    lines = [b"%s %s HTTP/1.1" % (method.encode("ascii"), target)]
    lines += [b"%s: %s" % pair for pair in headers]
    lines += [b"", b""]
    head = b"\r\n".join(lines)
    # A CR or LF inside the target, a name or a value would start a line (or a request) of
    # its own.
    if head.count(b"\n") != len(lines) - 1 or head.count(b"\r") != len(lines) - 1:
        raise httpx.LocalProtocolError("a line break inside the request target or a header")
    return head


def _read_answer(
    reader: BufferedReader, method: str
) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bool]:
    """Status, reason, headers, body and whether the connection may carry another request."""
    while True:
        version, status, reason = _status_line(reader)
        headers = _header_lines(reader)
        if not 100 <= status < 200:
            break  # interim answers (100 Continue, 103 Early Hints) are skipped
    tokens = {
        t.strip().lower() for n, v in headers if n.lower() == b"connection" for t in v.split(b",")
    }
    keep = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
    if method == "HEAD" or status in _BODYLESS:
        return status, reason, headers, b"", keep
    encodings = [v for n, v in headers if n.lower() == b"transfer-encoding"]
    lengths = {v.strip() for n, v in headers if n.lower() == b"content-length"}
    if encodings:
        if encodings[-1].rsplit(b",", 1)[-1].strip().lower() != b"chunked":
            return status, reason, headers, reader.read(), False  # ends at the close
        return status, reason, headers, _chunked_body(reader), keep
    if lengths:
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise httpx.RemoteProtocolError(f"bad Content-Length: {sorted(lengths)!r}")
        return status, reason, headers, _exactly(reader, int(next(iter(lengths)))), keep
    return status, reason, headers, reader.read(), False  # no length: the body ends at the close


def _status_line(reader: BufferedReader) -> tuple[bytes, int, bytes]:
    line = reader.readline(_MAX_LINE + 1)
    if not line:
        raise httpx.RemoteProtocolError("server disconnected without sending a response")
    if len(line) > _MAX_LINE:
        raise httpx.RemoteProtocolError("status line too long")
    version, _, rest = line.rstrip(b"\r\n").partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line: {line[:80]!r}")
    return version, int(code), reason.strip()


def _header_lines(reader: BufferedReader) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise httpx.RemoteProtocolError("header line too long")
        if line in (b"\r\n", b"\n"):
            return headers
        if not line.endswith(b"\n"):
            raise httpx.RemoteProtocolError("connection closed inside the headers")
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
        headers.append((name, value.strip()))
        if len(headers) > _MAX_HEADERS:
            raise httpx.RemoteProtocolError(f"more than {_MAX_HEADERS} headers")


def _exactly(reader: BufferedReader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise httpx.RemoteProtocolError(f"body cut short: {len(data)} of {size} bytes")
    return data


def _chunked_body(reader: BufferedReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise httpx.RemoteProtocolError(f"bad chunk size line: {line[:80]!r}") from None
        if size == 0:
            break
        parts.append(_exactly(reader, size))
        if _exactly(reader, 2) != b"\r\n":
            raise httpx.RemoteProtocolError("chunk not followed by CRLF")
    _header_lines(reader)  # the trailer section, discarded
    return b"".join(parts)


@contextmanager
def _mapped(*, connect_phase: bool = False) -> Iterator[None]:
    """Socket errors as httpx's exceptions (what ``SupplierClient`` maps)."""
    try:
        yield
    except TimeoutError as exc:
        raise (httpx.ConnectTimeout if connect_phase else httpx.ReadTimeout)(str(exc)) from exc
    except OSError as exc:
        if connect_phase:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        if isinstance(exc, BrokenPipeError):
            raise httpx.WriteError(str(exc)) from exc
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
