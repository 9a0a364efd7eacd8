"""Fixtures for the supplier sandbox tests: a running sandbox, a signing client, a receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from supplier_sandbox.server import RunningSandbox, SandboxConfig, start_sandbox
from tests.support.sandbox import TODAY, Supplier


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(products=30, seed=7, today=TODAY, callback_backoff_s=0.02)


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[RunningSandbox]:
    with start_sandbox(sandbox_config) as running:
        yield running


@pytest.fixture
def supplier(sandbox: RunningSandbox) -> Iterator[Supplier]:
    client = Supplier(sandbox.url)
    yield client
    client.http.close()


@pytest.fixture
def admin(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url + "/_admin", timeout=10, trust_env=False) as client:
        yield client


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """A tiny distributor callback endpoint: records each POST, answers from a script."""

    url: str
    received: list[Received] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)  # used first, then success
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, service: str) -> list[dict[str, Any]]:
        with self.lock:
            items = list(self.received)
        return [
            json.loads(item.body["OrderNotifyBody"])
            for item in items
            if item.body["OrderNotifyHeader"]["NotifyServiceName"] == service
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target = box[0]
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with target.lock:
                target.received.append(
                    Received(self.path, dict(self.headers.items()), json.loads(raw))
                )
                reply = target.replies.pop(0) if target.replies else None
            if reply is None:
                reply = {"Code": 1000, "IsSuccess": True, "LogId": "", "Message": "收到通知"}
            data = json.dumps(reply, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(url=f"http://127.0.0.1:{server.server_port}/callbacks/zzy"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield box[0]
    server.shutdown()
    server.server_close()
