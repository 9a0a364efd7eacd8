"""Per-app state and the per-request session, shared by the blueprints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, g
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.queries import GapClock
from catalog_api.reads import ReadCounter
from catalog_api.waiting import ChangeWatcher
from worker.settings import ReadApiSettings


@dataclass
class ApiState:
    """What the views need, built once per app."""

    settings: ReadApiSettings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: CollectorRegistry
    clock: Callable[[], datetime]
    change_settle: timedelta
    gaps: GapClock
    watcher: ChangeWatcher
    change_wait_cap_s: float = 60.0
    reads: ReadCounter | None = None


def state() -> ApiState:
    found: ApiState = current_app.extensions["catalog_api"]
    return found


def db() -> Session:
    """This request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = state().sessions()
    session: Session = g.db
    return session


def close_session(_exc: BaseException | None) -> None:
    """Teardown: close the request's session, if one was opened."""
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.close()
