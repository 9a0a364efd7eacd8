"""``catalog-sync db``, ``sync`` and ``status``: the command line's composition root."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.logs import configure_logging
from worker.settings import ConfigError, Settings, load_settings


class _DatabaseOnly(BaseSettings):
    """The one setting ``db upgrade`` needs, read like ``Settings`` reads it."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)
    database_url: str = Settings.model_fields["database_url"].default
    log_level: str = Settings.model_fields["log_level"].default


def _settings() -> Settings:
    """The settings, with logging set up (masked, the sign key among the secrets)."""
    try:
        settings: Settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_level, [settings.zzy_sign_key.get_secret_value()])
    return settings


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (SQLite also does this itself on first use)."""
    from models.db import make_engine, upgrade

    only = _DatabaseOnly()  # upgrading needs no supplier settings (nor knows the sign key)
    configure_logging(only.log_level)
    database_url = only.database_url
    engine = make_engine(database_url)
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")


@click.command()
@click.option(
    "--prices",
    type=click.Choice(["changed", "all", "none"]),
    default="changed",
    show_default=True,
    help="Which products' prices to refresh after the pass.",
)
@click.option("--product", "product_id", type=int, default=None, help="Only this product.")
def sync(prices: str, product_id: int | None) -> None:
    """Run a product pass in this process (no broker), then refresh prices."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from worker.locks import holding, lock_dir_for, pass_lock
    from worker.prices import refresh_many
    from worker.products import sync_one_product, sync_products
    from worker.runtime import build_runtime

    settings = _settings()
    runtime = build_runtime(settings)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    summary: dict[str, Any] = {}
    failed = False
    try:
        with progress:
            if product_id is not None:
                kind = sync_one_product(runtime.sessions, runtime.supplier, product_id)
                summary["product"] = {"id": product_id, "change": kind}
                due = [product_id] if prices != "none" else []
            else:
                lock = pass_lock(runtime.redis, lock_dir_for(settings.database_url))
                with holding(lock) as taken:
                    if not taken:
                        raise click.ClickException("another product pass is running")
                    pages = progress.add_task("products", total=None)
                    result = sync_products(
                        runtime.sessions,
                        runtime.supplier,
                        max_deauthorize_share=settings.deauthorize_max_share,
                        on_page=lambda seen, total: progress.update(
                            pages, completed=seen, total=total
                        ),
                    )
                failed = result.outcome != "ok"
                summary["pass"] = {
                    k: getattr(result, k)
                    for k in (
                        "run_id", "outcome", "is_complete", "pages", "seen", "new", "changed",
                        "unchanged", "deauthorized", "reauthorized", "quarantined", "requests",
                        "error",
                    )
                }  # fmt: skip
                summary["pass"]["seconds"] = round(result.seconds, 2)
                due = _price_targets(runtime.sessions, prices, result.price_due)
            if due:
                task = progress.add_task("prices", total=len(due))
                batch = refresh_many(
                    runtime.sessions,
                    runtime.supplier,
                    due,
                    window_days=settings.price_window_days,
                    on_done=lambda _: progress.advance(task),
                )
                summary["prices"] = {
                    "refreshed": batch.refreshed,
                    "changed": batch.changed,
                    "errors": batch.errors,
                }
                failed = failed or batch.errors > 0
    finally:
        runtime.close()
    click.echo(json.dumps(summary, indent=2, default=str))
    if failed:
        sys.exit(1)


def _price_targets(sessions: Any, prices: str, changed: list[int]) -> list[int]:
    if prices == "none":
        return []
    if prices == "changed":
        return changed
    from sqlalchemy import select

    from models.catalog import Product

    with sessions() as session:
        return list(
            session.scalars(select(Product.product_id).where(Product.is_authorized.is_(True)))
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """The last runs, counts and price freshness."""
    from models.db import ensure_schema, make_engine, make_session_factory
    from worker.status import collect_status

    database_url = _settings().database_url
    engine = make_engine(database_url)
    try:
        if engine.dialect.name == "sqlite":
            ensure_schema(engine)
        report = collect_status(make_session_factory(engine))
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    products, prices = report["products"], report["prices"]
    console.print(
        f"products: {products['total']} total, {products['authorized']} authorized, "
        f"{products['on_shelf']} on shelf, {products['quarantined']} quarantined"
    )
    age = prices["oldest_refresh_age_s"]
    console.print(
        f"prices: oldest refresh {'never' if age is None else f'{age:.0f} s ago'}, "
        f"{prices['never_refreshed']} never refreshed"
    )
    inbox = report.get("inbox")
    if inbox:
        console.print("callback inbox: " + ", ".join(f"{n} {s}" for s, n in inbox.items()))
    table = Table(
        "id",
        "kind",
        "outcome",
        "seen",
        "new",
        "changed",
        "unchanged",
        "deauth",
        "reauth",
        "requests",
        "seconds",
    )
    for run in report["runs"]:
        table.add_row(
            *(
                str(run[k])
                for k in (
                    "id",
                    "kind",
                    "outcome",
                    "seen",
                    "new",
                    "changed",
                    "unchanged",
                    "deauthorized",
                    "reauthorized",
                    "requests",
                    "seconds",
                )
            )
        )
    console.print(table)
