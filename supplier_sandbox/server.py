"""Run a sandbox on a background thread, for tests, benchmarks and the CLI."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from supplier_sandbox.app import create_app
from supplier_sandbox.config import SandboxConfig
from supplier_sandbox.state import SandboxState

__all__ = ["RunningSandbox", "SandboxConfig", "start_sandbox"]


def open_connections(server: object) -> set[socket.socket]:
    """The server's kept-alive connections, closed when the sandbox stops (a stopped supplier
    must not go on answering on a connection opened before)."""
    return _connections(server, "sandbox_connections")


def busy_connections(server: object) -> set[socket.socket]:
    """The connections with a request being served: stopping lets these answer first."""
    return _connections(server, "sandbox_busy_connections")


def _connections(server: object, name: str) -> set[socket.socket]:
    held: set[socket.socket] | None = getattr(server, name, None)
    if held is None:
        held = set()
        setattr(server, name, held)
    return held


class _KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive for requests without a body, as a real API gateway keeps a caller's
    connection open across requests (the sync's GETs: pages and price calendars).

    werkzeug closes every connection because ``http.server`` cannot tell an unread body from
    the next request: after each answer it drains whatever the socket holds, which would eat
    a kept-alive caller's next request. A request without a body has nothing to drain, so it
    is served with an empty body stream (the drain then stops at once) and its connection
    stays open. Requests with a body close after their answer, as before.
    """

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        open_connections(self.server).add(self.connection)
        # Headers and body leave in two writes: without this, Nagle's algorithm holds the body
        # until the caller's delayed ACK (40 ms) on a connection that stays open.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        open_connections(self.server).discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        busy = busy_connections(self.server)
        busy.add(self.connection)
        try:
            if not self._bodyless():
                super().run_wsgi()
                return
            socket_stream = self.rfile
            self.rfile = io.BytesIO()  # the request's body, and all the drain will find
            try:
                super().run_wsgi()
            finally:
                self.rfile = socket_stream
        finally:
            busy.discard(self.connection)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._bodyless():
            return
        super().send_header(keyword, value)

    def _bodyless(self) -> bool:
        headers = self.headers
        return (
            self.command in ("GET", "HEAD")
            and headers.get("Content-Length", "0").strip() in ("", "0")
            and "Transfer-Encoding" not in headers
        )


class _QuietHandler(_KeepAliveHandler):
    """Benchmarks send thousands of requests; one log line each would dominate the run."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _LoggingHandler(_KeepAliveHandler):
    """The ordinary werkzeug access log, for the foreground CLI."""


# How long stopping waits for requests being served to answer.
_ANSWER_GRACE_S = 5.0


class RunningSandbox:
    """A sandbox serving on loopback: ``url``, ``state``, ``stop()``; a context manager."""

    def __init__(
        self, server: BaseWSGIServer, thread: threading.Thread, state: SandboxState
    ) -> None:
        self._server = server
        self._thread = thread
        self.state = state
        host = server.host if ":" not in server.host else f"[{server.host}]"
        self.url = f"http://{host}:{server.server_port}"
        self._stopped = False

    @property
    def port(self) -> int:
        """The port actually bound (useful when started with port 0)."""
        return int(self._server.server_port)

    def stop(self) -> None:
        """Release held requests, stop serving, repricing and the callback worker."""
        if self._stopped:
            return
        self._stopped = True
        self.state.traffic.release_holds()
        self._server.shutdown()
        self._thread.join(timeout=5)
        # A request released from its hold (or being served) answers before its connection
        # closes; idle kept-alive connections close at once.
        deadline = time.monotonic() + _ANSWER_GRACE_S
        while busy_connections(self._server) and time.monotonic() < deadline:
            time.sleep(0.01)
        for connection in list(open_connections(self._server)):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self.state.close()

    def wait(self) -> None:
        """Block until the server thread ends (the CLI's foreground)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(config: SandboxConfig, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Build the state and app and serve them threaded; port 0 takes any free port."""
    state = SandboxState(config)
    handler = _LoggingHandler if config.log_requests else _QuietHandler
    server = make_server(host, port, create_app(state), threaded=True, request_handler=handler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"supplier-sandbox-{server.server_port}",
        daemon=True,
    )
    thread.start()
    if state.repricer is not None:
        state.repricer.start()
    return RunningSandbox(server, thread, state)
