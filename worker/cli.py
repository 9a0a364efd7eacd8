"""The ``catalog-sync`` command. Subcommands live beside the code they drive and load lazily,
so ``catalog-sync sandbox`` never imports Celery and ``--help`` stays fast."""

from __future__ import annotations

import importlib
import os
from typing import Any, TypeVar

import click

from worker.settings import ReadApiSettings, Settings

S = TypeVar("S", bound=ReadApiSettings)

# name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "sandbox": "supplier_sandbox.cli:sandbox",
    "db": "worker.commands:db",
    "sync": "worker.commands:sync",
    "status": "worker.commands:status",
    "prices": "worker.commands:prices",
    "web": "callbacks.commands:web",
    "inbox": "callbacks.commands:inbox",
    "api": "catalog_api.commands:api",
    "doctor": "worker.doctor:doctor",
    "order": "worker.orders.commands:order",
}


def command_settings(kind: type[S] = Settings) -> S:  # type: ignore[assignment]
    """Settings for a command, loaded and applied alike by every command module: a bad setting
    is one ``Error:`` line, and logging is set up with every secret the settings hold masked."""
    from worker.logs import configure_logging_for
    from worker.settings import ConfigError, load_settings

    try:
        settings = load_settings(kind)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging_for(settings)
    return settings


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            raise TypeError(f"{target} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Configuration and infrastructure failures end in one ``Error:`` line, not a traceback."""
        from worker.startup import debug_requested, explain

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            message = explain(exc)
            if message is None or debug_requested():
                raise
            raise click.ClickException(message) from None


@click.group(cls=LazyGroup)
@click.version_option(package_name="catalog-sync")
@click.option(
    "--debug",
    is_flag=True,
    envvar="CATALOG_SYNC_DEBUG",
    help="Show tracebacks instead of one-line errors.",
)
def main(debug: bool) -> None:
    """Keep a distributor's local copy of the ticket supplier's catalog exact and fresh."""
    if debug:
        os.environ["CATALOG_SYNC_DEBUG"] = "true"  # seen by the commands' own error handling
