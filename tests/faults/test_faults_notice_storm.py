"""A notice storm against the Procfile's web process while its workers are killed and
PostgreSQL restarts: every acknowledged notice is in the inbox and applied exactly once.

The sender plays the supplier: each notice is signed at its own millisecond and sent again,
freshly signed, until it is answered ``IsSuccess: true`` (an error status, a 503, a cut
connection, a timeout are all resent). Order notices each carry one fact about one order (a
ticket, a redemption, a refund with its apply number), so:

- lost: an acknowledged delivery whose signature or inbox row is missing (``faults_acked_lost``);
- applied twice: an order fact with more than one ``order_events`` row of its kind, more than
  one ``order_refunds`` row, or more than one inbox row (``faults_applied_twice``);
- not applied: an acknowledged notice whose inbox row is not ``done`` once the workers are idle.

Product notices (re-fetch details, refresh prices) are hints applied once per delivery (a
resend is a new delivery); the catalog did not change, so they must leave it equal to the
sandbox's truth and write no change row at all.

With ``FAULTS_REPORT`` set, the figures are written there as JSON (the benchmark reads them).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.relay import run_relay
from models.base import utcnow
from models.catalog import Change
from models.inbox import InboxMessage, InboxSignature, InboxStatus
from models.orders import OrderEvent, OrderRefund
from supplier_sandbox.server import SandboxConfig
from tests.support.callbacks import PATH, Stamps, encode, envelope
from tests.support.faults import CeleryWorkers, Web, duplicate_changes, service_env
from tests.support.ops import answers, wait_until
from tests.support.servers import PrivatePostgres, PrivateRedis
from tests.support.settings import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY, make_settings
from tests.support.sync import assert_matches_truth, full_sync, make_client
from worker.celery_app import create_celery
from worker.supplier.signing import auth_headers, signature_bytes

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

ORDERS = 500  # three order notices each
PRODUCT_NOTICES = 500
SENDERS = 8
ORDER_BASE = 7_000_000


@dataclass
class Notice:
    service: str
    body: dict[str, Any]
    fact: tuple[int, str] | None  # (OrderId, ledger kind) for order notices
    signature: str | None = None  # hex, of the acknowledged delivery
    attempts: int = 0


@dataclass
class Storm:
    notices: list[Notice]
    acked: int = 0
    resends: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def notices(product_ids: list[int]) -> list[Notice]:
    made: list[Notice] = []
    for k in range(ORDERS):
        order_id, origin = ORDER_BASE + k, f"fault-origin-{k}"
        made.append(
            Notice(
                "order_ticket_notify",
                {
                    "OriginOrderId": origin,
                    "OrderId": order_id,
                    "VoucherCode": {
                        "OrderVoucherCode": f"V{order_id}",
                        "OrderUserVouchers": [
                            {"IDCardNo": "36220163556666666", "VoucherCode": f"V{order_id}-1"}
                        ],
                    },
                    "TicketStatus": 1,
                },
                (order_id, "ticket"),
            )
        )
        made.append(
            Notice(
                "order_verify_notify",
                {
                    "TicketStatus": 1,
                    "OriginOrderId": origin,
                    "OrderId": order_id,
                    "VoucherCode": [f"V{order_id}-1"],
                    "OrderTotal": 2,
                    "CheckedNumber": 1,
                    "VoucherType": 1,
                },
                (order_id, "redemption"),
            )
        )
        made.append(
            Notice(
                "order_refund_notify",
                {
                    "OrderId": order_id,
                    "RefundApplyNo": f"RA{order_id}",
                    "RefundStatus": 1,
                    "RefundReason": " ",
                    "VoucherCode": [],
                },
                (order_id, "refund"),
            )
        )
    for k in range(PRODUCT_NOTICES):
        status = 3 if k % 5 == 0 else 2  # details re-fetched (4 in 5), or prices refreshed
        made.append(
            Notice(
                "order_product_notify",
                {"ProductId": product_ids[k % len(product_ids)], "Status": status},
                None,
            )
        )
    # Interleaved, so order and product notices arrive mixed.
    return [made[i] for i in sorted(range(len(made)), key=lambda i: (i * 7919) % len(made))]


def send_until_acked(
    storm: Storm, notice: Notice, url: str, stamps: Stamps, client: httpx.Client, deadline: float
) -> None:
    body = encode(envelope(notice.service, notice.body))
    while time.monotonic() < deadline:
        stamp = next(stamps)
        headers = auth_headers(SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY, PATH, stamp)
        headers["Content-Type"] = "application/json"
        notice.attempts += 1
        try:
            reply = client.post(url + PATH, content=body, headers=headers)
            ok = reply.status_code == 200 and reply.json().get("IsSuccess") is True
        except (httpx.HTTPError, ValueError):
            ok = False
        if ok:
            notice.signature = signature_bytes(
                SANDBOX_PARTNER_ID, stamp, PATH, SANDBOX_SIGN_KEY
            ).hex()
            with storm.lock:
                storm.acked += 1
            return
        with storm.lock:
            storm.resends += 1
        time.sleep(0.05)


def run_storm(storm: Storm, url: str, deadline: float) -> None:
    stamps = Stamps()
    local = threading.local()
    clients: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=5.0, trust_env=False)
            clients.append(local.client)
        return local.client  # type: ignore[no-any-return]

    try:
        with ThreadPoolExecutor(SENDERS) as pool:
            list(
                pool.map(
                    lambda n: send_until_acked(storm, n, url, stamps, client(), deadline),
                    storm.notices,
                )
            )
    finally:
        for c in clients:
            c.close()


@pytest.fixture
def report_path() -> Iterator[Path | None]:
    target = os.environ.get("FAULTS_REPORT")
    yield Path(target) if target else None


@pytest.mark.parametrize("fault_sandbox", [SandboxConfig(products=60, seed=21)], indirect=True)
def test_notice_storm_with_gunicorn_kills_and_postgres_restarts_loses_nothing(
    fault_sandbox: Any,
    fault_db: str,
    fault_redis: PrivateRedis,
    fault_sessions: sessionmaker[Session],
    private_pg: PrivatePostgres,
    tmp_path: Path,
    report_path: Path | None,
) -> None:
    started = time.monotonic()
    with make_client(fault_sandbox.url) as supplier:
        full_sync(fault_sessions, supplier, fault_sandbox)
    with fault_sessions() as session:
        changes_before = session.scalar(select(func.count()).select_from(Change))
    env = service_env(
        fault_sandbox.url,
        fault_db,
        fault_redis.url,
        PRODUCT_NOTICE_COALESCE_S="1",
        INBOX_MAX_ATTEMPTS="10",
    )
    web = Web(env, tmp_path, workers=2)
    workers = CeleryWorkers(env, tmp_path, concurrency=3)
    restarts_before = private_pg.restarts
    try:
        workers.start()
        assert wait_until(lambda: answers(web.url + "/healthz"), 60), web.log.read_text()[-3000:]
        workers.wait_ready()
        storm = Storm(notices(fault_sandbox.state.catalog.authorized_ids()))
        sender = threading.Thread(
            target=run_storm, args=(storm, web.url, time.monotonic() + 240), daemon=True
        )
        sender.start()
        total = len(storm.notices)
        # Faults keyed to progress: at every tenth of the notices acknowledged a gunicorn worker
        # is killed (both of them at 30, 60 and 90 %: nothing answers until the master forks
        # new ones), PostgreSQL restarted (fast, then as after a crash) at 35 % and 70 %.
        plan = [
            (total * tenth // 10, "web-all" if tenth % 3 == 0 else "web") for tenth in range(1, 10)
        ]
        plan += [(total * 35 // 100, "pg-fast"), (total * 70 // 100, "pg-immediate")]
        plan.sort()
        for threshold, fault in plan:
            while storm.acked < threshold and sender.is_alive():
                time.sleep(0.02)
            if not sender.is_alive():
                break
            if fault.startswith("web"):
                web.kill_workers(1 if fault == "web" else 2)
            else:
                private_pg.restart("fast" if fault == "pg-fast" else "immediate")
        sender.join(timeout=260)
        assert not sender.is_alive(), "the sender did not finish"
        storm_s = time.monotonic() - started
        print(f"storm took {storm_s:.1f} s")
        unacked = [n for n in storm.notices if n.signature is None]
        assert not unacked, (
            f"{len(unacked)} notices never acknowledged; web log:\n" + (web.log.read_text()[-3000:])
        )

        # Every acknowledged delivery: its signature recorded, its inbox row there.
        inbox_of = acknowledged_rows(fault_sessions, storm.notices)
        lost = [n for n in storm.notices if inbox_of.get(n.signature or "") is None]

        # Quiescence: the relay (run here with its clock ahead, so retries need not wait their
        # minutes) re-queues what a restart failed, until every row is done.
        wanted = {i for i in inbox_of.values() if i is not None}
        app = create_celery(make_settings(fault_sandbox.url, fault_db, redis_url=fault_redis.url))
        undone = wait_done(fault_sessions, wanted, app, timeout=240)
        figures = {
            "faults_acked_lost": len(lost),
            "faults_applied_twice": applied_twice(fault_sessions),
            "faults_not_applied": len(undone),
            "notices_sent": total,
            "notices_acked": storm.acked,
            "resends": storm.resends,
            "gunicorn_kills": web.kills,
            "postgres_restarts": private_pg.restarts - restarts_before,
            "storm_s": round(storm_s, 1),
            "duration_s": round(time.monotonic() - started, 1),
        }
        if report_path is not None:
            report_path.write_text(json.dumps(figures, indent=2) + "\n")
        print("notice storm:", json.dumps(figures))
        assert figures["faults_acked_lost"] == 0, figures
        assert figures["faults_applied_twice"] == 0, figures
        assert figures["faults_not_applied"] == 0, (
            f"{figures}\n{describe_rows(fault_sessions, undone)}\n{workers.log_tail()}"
        )
        assert figures["gunicorn_kills"] >= 12 and figures["postgres_restarts"] == 2, figures
        # Product notices: the catalog is the truth still, and nothing was written twice.
        assert_matches_truth(fault_sessions, fault_sandbox)
        with fault_sessions() as session:
            changes_after = session.scalar(select(func.count()).select_from(Change))
        assert changes_after == changes_before
        assert duplicate_changes(fault_sessions) == []
    finally:
        web.stop()
        workers.stop()


def acknowledged_rows(sessions: sessionmaker[Session], sent: list[Notice]) -> dict[str, int | None]:
    """Signature of each acknowledged delivery -> the inbox row it was stored as (None: none)."""
    signatures = [n.signature for n in sent if n.signature]
    with sessions() as session:
        keys = dict(
            session.execute(
                select(InboxSignature.signature, InboxSignature.dedupe_key).where(
                    InboxSignature.signature.in_(signatures)
                )
            ).all()
        )
        rows = dict(
            session.execute(
                select(InboxMessage.dedupe_key, InboxMessage.id).where(
                    InboxMessage.dedupe_key.in_(set(keys.values()))
                )
            ).all()
        )
    return {s: rows.get(keys.get(s, "")) for s in signatures}


def wait_done(
    sessions: sessionmaker[Session], wanted: set[int], app: Any, timeout: float
) -> set[int]:
    """Wait until every wanted row is done; whenever the workers have gone quiet (no row done
    for a few seconds) with some left, run the relay as if its retry delays had passed."""
    deadline = time.monotonic() + timeout
    undone = set(wanted)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        with sessions() as session:
            done = set(
                session.scalars(
                    select(InboxMessage.id).where(
                        InboxMessage.id.in_(undone), InboxMessage.status == InboxStatus.DONE
                    )
                )
            )
        undone -= done
        if not undone:
            break
        if done:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 4:
            with sessions.begin() as session:
                plan = run_relay(
                    session,
                    now=utcnow() + timedelta(hours=2),
                    stale_after_s=60,
                    max_attempts=10,
                    signature_ttl_s=3 * 3600,
                )
            for inbox_id in plan.requeue:
                app.send_task("callbacks.tasks.process_inbox", args=[inbox_id], priority=0)
            quiet_since = time.monotonic()
        time.sleep(0.5)
    return undone


def describe_rows(sessions: sessionmaker[Session], ids: set[int]) -> str:
    with sessions() as session:
        rows = session.execute(
            select(
                InboxMessage.id,
                InboxMessage.service_name,
                InboxMessage.status,
                InboxMessage.attempts,
                InboxMessage.next_attempt_at,
                InboxMessage.last_error,
            )
            .where(InboxMessage.id.in_(ids))
            .order_by(InboxMessage.id)
            .limit(12)
        ).all()
    return "\n".join(str(tuple(r)) for r in rows)


def applied_twice(sessions: sessionmaker[Session]) -> int:
    """Order facts applied (or stored) more than once."""
    base = (OrderEvent.supplier_order_id >= ORDER_BASE,)
    with sessions() as session:
        events = Counter(
            {
                (oid, kind): n
                for oid, kind, n in session.execute(
                    select(OrderEvent.supplier_order_id, OrderEvent.kind, func.count())
                    .where(*base)
                    .group_by(OrderEvent.supplier_order_id, OrderEvent.kind)
                )
            }
        )
        refunds = session.execute(
            select(OrderRefund.supplier_order_id, func.count())
            .group_by(OrderRefund.supplier_order_id)
            .having(func.count() > 1)
        ).all()
        rows = session.execute(
            select(InboxMessage.service_name, InboxMessage.subject, func.count())
            .where(InboxMessage.service_name != "order_product_notify")
            .group_by(InboxMessage.service_name, InboxMessage.subject)
            .having(func.count() > 1)
        ).all()
    return sum(1 for n in events.values() if n > 1) + len(refunds) + len(rows)
