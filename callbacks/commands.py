"""``catalog-sync web`` (the callback app, for local use) and ``catalog-sync inbox``."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import select

from models.base import utcnow
from models.inbox import InboxMessage, InboxStatus
from worker.logs import configure_logging


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to bind."
)
def web(host: str, port: int) -> None:
    """Serve the callback receiver (production: gunicorn 'callbacks.app:create_app()')."""
    from werkzeug.serving import run_simple

    from callbacks.app import create_app
    from worker.settings import Settings, load_settings
    from worker.startup import check_services

    settings: Settings = load_settings()
    configure_logging(
        settings.log_level, [settings.zzy_sign_key.get_secret_value()], settings.log_format
    )
    check_services(settings, broker_optional=True)
    app = create_app(settings)
    click.echo(f"callback receiver listening on http://{host}:{port}{settings.callback_path}")
    run_simple(host, port, app, threaded=True)


@click.group()
def inbox() -> None:
    """See and retry the callback inbox."""
    settings = _runtime().settings
    configure_logging(
        settings.log_level, [settings.zzy_sign_key.get_secret_value()], settings.log_format
    )


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
        "last_error": row.last_error,
    }
    if full:
        data["payload"] = row.payload  # masked at intake
        data["dedupe_key"] = row.dedupe_key
    return data


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
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    click.echo(f"{'id':>8}  {'status':<8} {'tries':>5}  {'service':<22} {'subject':<22} received")
    for row in rows:
        click.echo(
            f"{row['id']:>8}  {row['status']:<8} {row['attempts']:>5}  {row['service']:<22} "
            f"{row['subject']:<22} {row['received_at']}"
        )
        if row["last_error"]:
            click.echo(f"{'':>10}last error: {row['last_error']}")


@inbox.command("show")
@click.argument("inbox_id", type=int)
def show_inbox(inbox_id: int) -> None:
    """One row in full (personal data in it is masked)."""
    with _runtime().sessions() as session:
        row = session.get(InboxMessage, inbox_id)
        if row is None:
            raise click.ClickException(f"no inbox row {inbox_id}")
        click.echo(json.dumps(_as_dict(row, full=True), ensure_ascii=False, indent=2))


@inbox.command("replay")
@click.argument("inbox_id", type=int)
def replay_inbox(inbox_id: int) -> None:
    """Make a row pending again (fresh attempts) and queue it."""
    from callbacks.enqueue import Enqueuer
    from callbacks.relay import replay
    from callbacks.tasks import celery_for, sender_for

    runtime = _runtime()
    with runtime.sessions.begin() as session:
        if not replay(session, inbox_id, utcnow()):
            raise click.ClickException(f"no inbox row {inbox_id}")
    enqueuer = Enqueuer(sender_for(celery_for(runtime.settings)), timeout_s=5.0)
    queued = enqueuer.enqueue(inbox_id)
    enqueuer.close()
    click.echo(
        f"inbox {inbox_id} pending again; " + ("queued" if queued else "the relay will queue it")
    )
