"""Gunicorn settings for both Flask apps: ``gunicorn -c python:worker.gunicorn_conf 'APP'``.

- Start-up checks run once, in the master, before any worker boots (``on_starting``): the
  settings, the database (migrated here, once, under the migration lock), Redis or the broker.
  A failure is one ``Error:`` line and exit status 1, not a worker traceback per boot.
- Logs: ``LOG_LEVEL`` and ``LOG_FORMAT`` (text or json), masked, with the access log on stdout.
- Metrics: prometheus_client's multiprocess mode. Each master gets a fresh
  ``PROMETHEUS_MULTIPROC_DIR`` (under the one given, if any) before its workers import the
  client, so ``/metrics`` sums the request counters of every worker; the folder of a worker
  that exits is marked dead, and the whole folder goes when the master stops.

This module is a composition root: gunicorn loads it in the master and reads its globals.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import tempfile
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger

from worker.logs import MaskingFilter, make_formatter

_metrics_dir = tempfile.mkdtemp(
    prefix="catalog-sync-metrics-", dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

accesslog = "-"
# web and api are two masters on one machine: the default control socket path would be shared.
control_socket_disable = True
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def _secrets() -> list[str]:
    return [v for v in (os.environ.get("ZZY_SIGN_KEY"), os.environ.get("CATALOG_API_TOKEN")) if v]


class Logger(_GunicornLogger):  # type: ignore[misc]
    """Gunicorn's error and access logs in the project's format, through the masking filter."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        log_format = os.environ.get("LOG_FORMAT", "text").lower()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(make_formatter(log_format))
                handler.addFilter(MaskingFilter(_secrets()))


logger_class = Logger


def _is_read_api(server: Any) -> bool:
    return "catalog_api" in str(getattr(server.app, "app_uri", ""))


def _loopback_only(addresses: list[Any]) -> bool:
    for address in addresses:
        if not isinstance(address, tuple):
            continue  # a unix socket: local by construction
        host = address[0]
        try:
            if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    return True


def on_starting(server: Any) -> None:
    """Check configuration and services once, in the master; one line and exit 1 on failure."""
    from catalog_api.auth import ANONYMOUS_REFUSED
    from worker.settings import ConfigError, ReadApiSettings, Settings, load_settings
    from worker.startup import check_database, check_services, fail, or_exit

    if _is_read_api(server):
        settings = or_exit(lambda: load_settings(ReadApiSettings))
        if settings.catalog_api_token is None:
            if not settings.catalog_api_anonymous:
                fail(ANONYMOUS_REFUSED)
            if not _loopback_only(list(server.cfg.address)):
                fail(
                    "CATALOG_API_ANONYMOUS: anonymous access is allowed only on a loopback "
                    "address: set CATALOG_API_TOKEN to serve other hosts"
                )
        or_exit(lambda: check_database(settings.database_url, migrate=True))
        return
    try:
        full = load_settings(Settings)
    except ConfigError as exc:
        fail(str(exc))
    or_exit(lambda: check_services(full, broker_optional=True))  # the callback receiver


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    logging.getLogger(__name__).debug("removed %s", _metrics_dir)
