"""``catalog-sync api``: serve the read API locally (gunicorn serves it in production)."""

from __future__ import annotations

import ipaddress

import click


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to bind")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
def api(host: str, port: int) -> None:
    """Serve the catalog read API on HOST:PORT with settings from the environment."""
    from werkzeug.serving import run_simple

    from catalog_api.app import create_app
    from worker.cli import command_settings
    from worker.settings import ReadApiSettings

    settings = command_settings(ReadApiSettings)
    if settings.catalog_api_token is None and not is_loopback(host):
        raise click.ClickException(
            "CATALOG_API_ANONYMOUS: anonymous access is allowed only on a loopback address: "
            "set CATALOG_API_TOKEN to serve other hosts"
        )
    app = create_app(settings)  # ConfigError without a token (one line, from the CLI group)
    click.echo(f"catalog read API listening on http://{host}:{port} (docs: /docs)")
    run_simple(host, port, app, threaded=True)
