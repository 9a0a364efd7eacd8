"""``catalog-sync web`` (the callback app, for local use) and ``catalog-sync inbox``."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import select

from models.base import utcnow
from models.inbox import InboxMessage, InboxStatus
from models.orders import OrderEvent
from worker.cli import command_settings
from worker.logs import configure_logging_for, mask
from worker.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to bind."
)
def web(host: str, port: int) -> None:
    """Serve the callback receiver (production: gunicorn 'callbacks.app:create_app()')."""
    from werkzeug.serving import run_simple

    from callbacks.app import create_app
    from worker.startup import check_services

    settings: Settings = command_settings()
    check_services(settings, broker_optional=True)
    app = create_app(settings)
    click.echo(f"callback receiver listening on http://{host}:{port}{settings.callback_path}")
    run_simple(host, port, app, threaded=True)


@click.group()
def inbox() -> None:
    """See and retry the callback inbox."""
    # The process's runtime holds the settings (tests install one): log as it says.
    configure_logging_for(_runtime().settings)


def _runtime() -> Any:
    from worker.runtime import get_runtime
    from worker.settings import ConfigError

    try:
        return get_runtime()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _as_dict(row: InboxMessage, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "service": row.service_name,
        "subject": row.subject,
        "status": row.status,
        "attempts": row.attempts,
        "received_at": row.received_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "reason": row.reason,
        "last_error": row.last_error,
    }
    if full:
        data["payload"] = row.payload  # masked at intake
        data["raw_body"] = row.raw_body  # masked at intake; only when the body was not JSON
        data["dedupe_key"] = row.dedupe_key
    return data


def _echo_json(value: Any, **options: Any) -> None:
    """Print JSON with personal data masked once more (rows stored before masking improved)."""
    click.echo(mask(json.dumps(value, ensure_ascii=False, **options)))


@inbox.command("list")
@click.option("--status", type=click.Choice([s.value for s in InboxStatus]), default=None)
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_inbox(status: str | None, limit: int, as_json: bool) -> None:
    """List inbox rows, newest first."""
    query = select(InboxMessage).order_by(InboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(InboxMessage.status == status)
    with _runtime().sessions() as session:
        rows = [_as_dict(row) for row in session.scalars(query)]
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"{'id':>8}  {'status':<8} {'tries':>5}  {'service':<22} {'subject':<22} received")
    for row in rows:
        click.echo(
            f"{row['id']:>8}  {row['status']:<8} {row['attempts']:>5}  {row['service']:<22} "
            f"{row['subject']:<22} {row['received_at']}"
        )
        if row["reason"]:
            click.echo(mask(f"{'':>10}reason: {row['reason']}"))
        if row["last_error"]:
            click.echo(mask(f"{'':>10}last error: {row['last_error']}"))


@inbox.command("show")
@click.argument("inbox_id", type=int)
def show_inbox(inbox_id: int) -> None:
    """One row in full, with what it did to the order ledger (personal data masked)."""
    with _runtime().sessions() as session:
        row = session.get(InboxMessage, inbox_id)
        if row is None:
            raise click.ClickException(f"no inbox row {inbox_id}")
        data = _as_dict(row, full=True)
        data["ledger_effects"] = [
            {"order": e.supplier_order_id, "kind": e.kind, "effect": e.effect}
            for e in session.scalars(
                select(OrderEvent).where(OrderEvent.inbox_id == inbox_id).order_by(OrderEvent.id)
            )
        ]
    _echo_json(data, indent=2)


@inbox.command("replay")
@click.argument("inbox_id", type=int, required=False)
@click.option(
    "--status",
    "by_status",
    type=click.Choice([InboxStatus.INVALID.value, InboxStatus.FAILED.value]),
    default=None,
    help="Replay every row in this status instead of one.",
)
def replay_inbox(inbox_id: int | None, by_status: str | None) -> None:
    """Try a row again: an invalid one is validated again first (after a fix); a failed or done
    one becomes pending with fresh attempts. Held rows are released with ``inbox release``."""
    if (inbox_id is None) == (by_status is None):
        raise click.UsageError("give one INBOX_ID or --status")
    runtime = _runtime()
    if inbox_id is not None:
        ids = [inbox_id]
    else:
        with runtime.sessions() as session:
            ids = list(
                session.scalars(
                    select(InboxMessage.id)
                    .where(InboxMessage.status == by_status)
                    .order_by(InboxMessage.id)
                )
            )
    queue = []
    for one in ids:
        status, reason = _replay_one(runtime, one)
        if status == InboxStatus.PENDING:
            queue.append(one)
        else:
            click.echo(mask(f"inbox {one} still {status}: {reason}"))
    _enqueue_all(runtime, queue, "pending again")
    if by_status is not None:
        click.echo(f"{len(queue)} of {len(ids)} {by_status} rows pending again")


def _replay_one(runtime: Any, inbox_id: int) -> tuple[str, str | None]:
    from callbacks.relay import replay, revalidate_invalid

    with runtime.sessions.begin() as session:
        row = session.get(InboxMessage, inbox_id)
        if row is None:
            raise click.ClickException(f"no inbox row {inbox_id}")
        if row.status == InboxStatus.HELD:
            raise click.ClickException(
                f"inbox {inbox_id} is held (reused signature): check it, then `inbox release`"
            )
        if row.status == InboxStatus.INVALID:
            return revalidate_invalid(session, inbox_id, runtime.settings.zzy_partner_id, utcnow())
        replay(session, inbox_id, utcnow())
    return InboxStatus.PENDING, None


@inbox.command("release")
@click.argument("inbox_id", type=int)
def release_inbox(inbox_id: int) -> None:
    """Apply a held order notice (its signature was reused with another body) after checking it."""
    from callbacks.relay import release

    runtime = _runtime()
    with runtime.sessions.begin() as session:
        if not release(session, inbox_id, utcnow()):
            raise click.ClickException(f"no held inbox row {inbox_id}")
    _enqueue_all(runtime, [inbox_id], "released")


def _enqueue_all(runtime: Any, ids: list[int], what: str) -> None:
    if not ids:
        return
    from callbacks.enqueue import Enqueuer
    from callbacks.tasks import celery_for, sender_for

    enqueuer = Enqueuer(sender_for(celery_for(runtime.settings)), timeout_s=5.0)
    try:
        for one in ids:
            queued = enqueuer.enqueue(one)
            click.echo(
                f"inbox {one} {what}; " + ("queued" if queued else "the relay will queue it")
            )
    finally:
        enqueuer.close()
