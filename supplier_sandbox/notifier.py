"""Outgoing callbacks: a queue and one worker thread that sends, and resends until acknowledged.

A delivery is done only when the distributor replies ``IsSuccess: true``; anything else
(an error status, a timeout, a body that is not that JSON) is retried with exponential
backoff, like the real supplier, until the attempts run out.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from supplier_sandbox.envelope import camelize
from supplier_sandbox.signing import signed_headers

_REPLY_KEEP = 500  # characters of a reply kept in the delivery log


@dataclass
class Delivery:
    """One notification and what became of it so far."""

    id: int
    url: str | None
    service: str
    body: dict[str, Any]
    attempts: int = 0
    last_status: int | None = None
    last_reply: str | None = None
    last_error: str | None = None
    done: bool = False
    given_up: bool = False

    @property
    def is_settled(self) -> bool:
        """Whether nothing more will happen to it."""
        return self.done or self.given_up

    def to_json(self) -> dict[str, Any]:
        """The delivery as the admin log shows it."""
        return {
            "id": self.id,
            "url": self.url,
            "service": self.service,
            "body": self.body,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_reply": self.last_reply,
            "last_error": self.last_error,
            "done": self.done,
            "given_up": self.given_up,
        }


def notification_payload(
    partner_id: int, service: str, body: dict[str, Any], quirks: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The callback JSON: a header object and the body as a string holding JSON, written as
    the shape quirks say (``null`` for empty lists, camelCase keys, the body as an object)."""
    shaped: Any = _nulled(body) if "null-lists" in quirks else body
    if "camel-case" in quirks:
        shaped = camelize(shaped)
    payload = {
        "OrderNotifyHeader": {"PartnerId": partner_id, "NotifyServiceName": service},
        "OrderNotifyBody": (
            shaped
            if "notice-body-object" in quirks
            else json.dumps(shaped, ensure_ascii=False, separators=(",", ":"))
        ),
    }
    return camelize(payload) if "camel-case" in quirks else payload


def _nulled(value: Any) -> Any:
    """Every empty list inside ``value`` as ``null`` (a .NET ``List<>`` left uninitialised)."""
    if isinstance(value, dict):
        return {key: _nulled(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nulled(item) for item in value] if value else None
    return value


def is_acknowledged(reply_text: str) -> bool:
    """Whether a reply is JSON with ``IsSuccess`` true (any key case)."""
    try:
        parsed = json.loads(reply_text)
    except ValueError:
        return False
    if not isinstance(parsed, dict):
        return False
    for key, value in parsed.items():
        if str(key).lower() == "issuccess":
            return value is True
    return False


class Notifier:
    """Sends deliveries from a background thread; the state's lock guards the log and queue."""

    def __init__(
        self,
        lock: threading.RLock,
        *,
        partner_id: int,
        sign_key: str,
        attempts: int,
        backoff_s: float,
        timeout_s: float,
        quirks: frozenset[str] = frozenset(),
    ) -> None:
        self._ready = threading.Condition(lock)
        self._quirks = quirks
        self._partner_id = partner_id
        self._sign_key = sign_key
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._log: list[Delivery] = []
        self._queue: list[tuple[float, int, Delivery]] = []
        self._sequence = itertools.count(1)
        self._ids = itertools.count(1)
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    def enqueue(self, url: str | None, service: str, body: dict[str, Any]) -> Delivery:
        """Log a notification and send it soon; with no URL it is only logged."""
        with self._ready:
            delivery = Delivery(id=next(self._ids), url=url, service=service, body=body)
            self._log.append(delivery)
            if url is None:
                delivery.given_up = True
                delivery.last_error = "no callback URL configured"
                return delivery
            self._push(delivery, time.monotonic())
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-callbacks", daemon=True
                )
                self._thread.start()
            return delivery

    def deliveries(self) -> list[dict[str, Any]]:
        """A snapshot of the delivery log, oldest first."""
        with self._ready:
            return [delivery.to_json() for delivery in self._log]

    def clear_log(self) -> None:
        """Forget settled deliveries (pending ones keep going)."""
        with self._ready:
            self._log = [delivery for delivery in self._log if not delivery.is_settled]

    def wait_settled(self, timeout_s: float) -> bool:
        """Block until every delivery is acknowledged or given up; False on timeout."""
        with self._ready:
            return self._ready.wait_for(
                lambda: not self._queue and self._in_flight == 0, timeout=timeout_s
            )

    def close(self) -> None:
        """Stop the worker; deliveries still queued are abandoned."""
        with self._ready:
            self._stopping = True
            thread = self._thread
            self._ready.notify_all()
        if thread is not None:
            thread.join(timeout=self._timeout_s + 1)

    def _push(self, delivery: Delivery, due: float) -> None:
        heapq.heappush(self._queue, (due, next(self._sequence), delivery))
        self._ready.notify_all()

    def _next(self) -> Delivery | None:
        with self._ready:
            while not self._stopping:
                if self._queue:
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0:
                        self._in_flight += 1
                        return heapq.heappop(self._queue)[2]
                    self._ready.wait(timeout=wait)
                else:
                    self._ready.wait()
            return None

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout_s, trust_env=False) as client:
            while (delivery := self._next()) is not None:
                status, reply, error = self._send(client, delivery)
                self._record(delivery, status, reply, error)

    def _send(
        self, client: httpx.Client, delivery: Delivery
    ) -> tuple[int | None, str | None, str | None]:
        assert delivery.url is not None
        payload = notification_payload(
            self._partner_id, delivery.service, delivery.body, self._quirks
        )
        headers = signed_headers(
            self._partner_id,
            self._sign_key,
            urlsplit(delivery.url).path or "/",
            int(time.time() * 1000),
        )
        try:
            response = client.post(delivery.url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            return None, None, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text[:_REPLY_KEEP], None

    def _record(
        self, delivery: Delivery, status: int | None, reply: str | None, error: str | None
    ) -> None:
        with self._ready:
            self._in_flight -= 1
            delivery.attempts += 1
            delivery.last_status, delivery.last_reply, delivery.last_error = status, reply, error
            if (
                status is not None
                and 200 <= status < 300
                and reply is not None
                and is_acknowledged(reply)
            ):
                delivery.done = True
            elif delivery.attempts >= self._attempts or self._stopping:
                delivery.given_up = True
            else:
                delay = self._backoff_s * 2 ** (delivery.attempts - 1)
                self._push(delivery, time.monotonic() + delay)
            self._ready.notify_all()
