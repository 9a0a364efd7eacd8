"""``catalog-sync sandbox``: serve the supplier sandbox in the foreground until Ctrl-C."""

from __future__ import annotations

import click

from supplier_sandbox.config import SandboxConfig
from supplier_sandbox.quirks import QUIRKS, parse_quirks
from supplier_sandbox.repricing import SPEC_HELP, parse_reprice_rates
from supplier_sandbox.server import start_sandbox


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8900, show_default=True, help="Port to listen on (0: any).")
@click.option("--products", default=50, show_default=True, help="Products in the catalog.")
@click.option("--seed", default=1, show_default=True, help="Seed of the generated catalog.")
@click.option("--latency-ms", default=0.0, show_default=True, help="Delay added to each request.")
@click.option(
    "--fail-rate",
    default=0.0,
    show_default=True,
    help="Share of requests answered badly: HTTP 500, or the fault quirks on, drawn at random.",
)
@click.option(
    "--quirks",
    default="",
    metavar="LIST",
    help=(
        "Comma-separated lawful variations of a real supplier, or 'all': "
        + ", ".join(QUIRKS)
        + ". Fault quirks (busy, http500, reset, slow-body) act at --fail-rate."
    ),
)
@click.option("--max-page-size", default=100, show_default=True, help="Cap on pageSize.")
@click.option("--partner-id", default=9258, show_default=True, help="The distributor's partner id.")
@click.option(
    "--sign-key",
    default="zzy-sandbox-signkey",
    show_default=True,
    help="HMAC sign key (the contract's public sandbox key).",
)
@click.option("--callback-url", default=None, help="Where callbacks are POSTed.")
@click.option(
    "--reprice-rates",
    default=None,
    metavar="SPEC",
    help=(
        "Reprice each product silently (no notice, no Version bump) as a Poisson process "
        f"with a hidden per-product rate: {SPEC_HELP}. Seen at /_admin/reprices."
    ),
)
@click.option(
    "--reprice-seed", default=1, show_default=True, help="Seed of the hidden repricing rates."
)
@click.option("--quiet", is_flag=True, help="Do not log each request.")
def sandbox(
    host: str,
    port: int,
    products: int,
    seed: int,
    latency_ms: float,
    fail_rate: float,
    max_page_size: int,
    partner_id: int,
    sign_key: str,
    callback_url: str | None,
    quiet: bool,
    quirks: str,
    reprice_rates: str | None,
    reprice_seed: int,
) -> None:
    """Serve a faithful local stand-in of the ticket supplier."""
    try:
        chosen = parse_quirks(quirks)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quirks") from None
    if reprice_rates is not None:
        try:
            parse_reprice_rates(reprice_rates)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--reprice-rates") from None
    config = SandboxConfig(
        partner_id=partner_id,
        sign_key=sign_key,
        products=products,
        seed=seed,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        max_page_size=max_page_size,
        callback_url=callback_url,
        log_requests=not quiet,
        quirks=chosen,
        reprice_rates=reprice_rates,
        reprice_seed=reprice_seed,
    )
    running = start_sandbox(config, host=host, port=port)
    click.echo(f"supplier sandbox serving {products} products at {running.url}")
    if chosen:
        click.echo(f"quirks: {', '.join(sorted(chosen))} (fail rate {fail_rate})")
    if reprice_rates is not None:
        click.echo(f"silent repricing: {reprice_rates} (seed {reprice_seed})")
    click.echo(f"admin interface (loopback only): {running.url}/_admin/stats")
    try:
        running.wait()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        running.stop()
