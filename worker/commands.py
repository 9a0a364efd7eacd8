"""``catalog-sync db``, ``sync`` and ``status``: the command line's composition root."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr, field_validator

from worker.cli import command_settings
from worker.settings import ReadApiSettings, Settings

# ``status`` exits with this when the last pass failed or prices are older than PRICE_MAX_AGE.
EXIT_UNHEALTHY = 2


class _LocalOnly(ReadApiSettings):
    """What the local-database commands (``db``, ``status``) need: no supplier secrets."""

    price_max_age: timedelta = Settings.model_fields["price_max_age"].default
    zzy_sign_key: SecretStr | None = None  # not needed; masked in logs if the environment has it

    @field_validator("price_max_age", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option(
    "--revision", default="head", show_default=True, help="Migrate up to this revision only."
)
def db_upgrade(revision: str) -> None:
    """Apply migrations, once, under a lock (every process also does this at start-up)."""
    from models.db import (
        current_revisions,
        ensure_schema,
        is_at_or_above,
        make_engine,
        migration_lock,
        upgrade,
    )

    engine = make_engine(
        command_settings(_LocalOnly).database_url
    )  # no supplier settings (nor the sign key)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        if revision == "head":
            ensure_schema(engine)
        elif _known(engine, revision) and is_at_or_above(engine, revision):
            current = ", ".join(sorted(current_revisions(engine)))
            if current != revision:
                click.echo(
                    f"database at {shown} is at {current}, past {revision}: nothing done "
                    f"(to go back: catalog-sync db downgrade --revision {revision})"
                )
                return
        else:
            with migration_lock(engine):
                upgrade(engine, revision)
        current = ", ".join(sorted(current_revisions(engine)))
    finally:
        engine.dispose()
    click.echo(f"database at {shown} is at {current}")


@db.command("downgrade")
@click.option("--revision", required=True, help="Undo migrations down to this revision.")
def db_downgrade(revision: str) -> None:
    """Undo migrations (for going back to an older release)."""
    from models.db import current_revisions, downgrade, make_engine, migration_lock

    engine = make_engine(command_settings(_LocalOnly).database_url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        _known(engine, revision)
        with migration_lock(engine):
            downgrade(engine, revision)
        current = ", ".join(sorted(current_revisions(engine))) or "base"
    finally:
        engine.dispose()
    click.echo(f"database at {shown} is at {current}")


@db.command("current")
def db_current() -> None:
    """The database's revision and this version's head."""
    from models.db import current_revisions, head_revisions, make_engine

    engine = make_engine(command_settings(_LocalOnly).database_url)
    try:
        current = ", ".join(sorted(current_revisions(engine))) or "none"
        head = ", ".join(sorted(head_revisions(engine)))
    finally:
        engine.dispose()
    click.echo(f"current: {current}\nhead: {head}")


def _known(engine: Any, revision: str) -> bool:
    """True for a revision this version has; a ClickException listing them otherwise."""
    from models.db import script_directory

    if revision == "base":
        return True
    script = script_directory(engine)
    known = [r.revision for r in script.walk_revisions()]
    if revision not in known:
        raise click.ClickException(
            f"no migration {revision!r}: known revisions are {', '.join(sorted(known))}"
        )
    return True


# Exit codes of ``sync`` (also in its --help and the README).
EXIT_OK, EXIT_FAILED, EXIT_PARTIAL = 0, 1, 2


@click.command(
    epilog=(
        "Exit codes: 0 the product pass completed and every price refresh succeeded (transient "
        "failures retried within the read budget); 2 partial: the pass completed but some "
        "products' prices still failed after their retries (they stay due and are listed); 1 "
        "the pass failed or found an anomaly (nothing deauthorized)."
    )
)
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

    from worker.locks import holding
    from worker.runtime import build_runtime
    from worker.startup import tune_gc
    from worker.supplier.errors import SupplierError
    from worker.sync.prices import refresh_many
    from worker.sync.products import sync_one_product, sync_products

    settings: Settings = command_settings()
    if settings.redis_url is not None:  # before anything changes: the pass lock lives there
        from worker.startup import check_redis

        check_redis(settings.redis_url)
    runtime = build_runtime(settings)
    tune_gc()
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
    partial = False
    try:
        with progress:
            if product_id is not None:
                try:
                    kind = sync_one_product(runtime.sessions, runtime.supplier, product_id)
                except SupplierError as exc:  # still failing after its retries
                    kind, failed = "failed", True
                    summary["product"] = {"id": product_id, "change": kind, "error": str(exc)}
                else:
                    summary["product"] = {"id": product_id, "change": kind}
                due = [product_id] if prices != "none" and kind != "failed" else []
            else:
                lock = runtime.pass_lock(ttl_s=60.0)
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
                        "retries", "version_regressions", "error",
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
                    "retries": batch.retries,
                }
                if batch.failed:
                    summary["prices"]["failing"] = batch.failed[:50]
                partial = batch.errors > 0
    finally:
        runtime.close()
    click.echo(json.dumps(summary, indent=2, default=str))
    if failed:
        sys.exit(EXIT_FAILED)
    if partial:
        sys.exit(EXIT_PARTIAL)


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
    from sqlalchemy.engine import make_url

    from models.db import ensure_schema, make_engine, make_session_factory
    from worker.sync.status import collect_status, problems

    local = command_settings(_LocalOnly)
    url = make_url(local.database_url)
    is_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if is_file and not Path(url.database or "").exists():  # a read-only command never creates one
        raise click.ClickException(
            f"DATABASE_URL: no database at {url.database}: point DATABASE_URL at the "
            "catalog's database, or create it with `catalog-sync db upgrade`"
        )
    engine = make_engine(local.database_url)
    try:
        ensure_schema(engine, migrate=False)
        report = collect_status(
            make_session_factory(engine),
            refresh_budget_per_s=local.supplier_rate_limit * local.price_refresh_share,
            price_max_age=local.price_max_age,
        )
    finally:
        engine.dispose()
    report["problems"] = problems(report, local.price_max_age)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str, ensure_ascii=False))
    else:
        _print_status(report)
    if report["problems"]:
        sys.exit(EXIT_UNHEALTHY)


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
        f"{prices['never_refreshed']} never refreshed, {prices['failing']} still failing"
    )
    refresh = report.get("refresh")
    if refresh:
        console.print(
            f"price refresh: {refresh['spent_per_s']:.2f} of {refresh['budget_per_s']:.2f} "
            f"requests/s; estimated staleness mean {refresh['staleness_mean_s']:.0f} s, "
            f"p99 {refresh['staleness_p99_s']:.0f} s"
        )
        for label, key in (("most", "most_refreshed"), ("least", "least_refreshed")):
            shown = ", ".join(
                f"{row['product_id']} ({row['refreshes_24h']})" for row in refresh[key]
            )
            console.print(f"  refreshed {label} (24 h): {shown or '-'}")
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
        "retries",
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
                    "retries",
                    "seconds",
                )
            )
        )
    console.print(table)
    for problem in report.get("problems", []):
        console.print(f"[bold red]problem:[/] {problem}")


@click.group()
def prices() -> None:
    """The background price refresh's plan."""


@prices.command("plan")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", default=20, show_default=True, help="How many visits to list.")
def prices_plan(as_json: bool, limit: int) -> None:
    """The next scheduled price refreshes: each one's estimated rate, weight, interval and due
    time (from the stored plan; the worker replans every few minutes)."""
    from models.base import utcnow
    from models.db import ensure_schema, make_engine, make_session_factory
    from worker.sync.refresh_tick import upcoming, visits_of

    local = command_settings(_LocalOnly)
    engine = make_engine(local.database_url)
    try:
        ensure_schema(engine, migrate=False)
        now = utcnow()
        visits = visits_of(
            upcoming(make_session_factory(engine), local.price_max_age, limit, now=now), now
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps({"visits": visits}, indent=2))
        return
    click.echo(f"{'product':>10} {'due in s':>9} {'interval s':>10} {'rate/day':>9} {'weight':>9}")
    for visit in visits:
        click.echo(
            f"{visit['product_id']:>10} {visit['due_in_s']:>9} {visit['interval_s']:>10} "
            f"{visit['rate_per_day']:>9} {visit['weight']:>9}"
        )
