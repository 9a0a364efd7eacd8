"""Run a sandbox on a background thread, for tests, benchmarks and the CLI."""

from __future__ import annotations

import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from supplier_sandbox.app import create_app
from supplier_sandbox.config import SandboxConfig
from supplier_sandbox.state import SandboxState

__all__ = ["RunningSandbox", "SandboxConfig", "start_sandbox"]


class _KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1: a caller's connection stays open across requests, as a real API gateway's does
    (werkzeug's default, HTTP/1.0, closes it after every answer)."""

    protocol_version = "HTTP/1.1"


class _QuietHandler(_KeepAliveHandler):
    """Benchmarks send thousands of requests; one log line each would dominate the run."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _LoggingHandler(_KeepAliveHandler):
    """The ordinary werkzeug access log, for the foreground CLI."""


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
