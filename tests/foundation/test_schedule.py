"""The beat schedule names tasks that the worker really registers."""

from __future__ import annotations

from pathlib import Path

from tests.support.settings import make_settings
from worker.celery_app import create_celery


def test_every_beat_entry_is_a_registered_task(tmp_path: Path) -> None:
    settings = make_settings(
        "http://127.0.0.1:9",
        broker_db_url=f"sqlite:///{tmp_path / 'broker.db'}",
        product_pass_interval_s=123,
    )
    app = create_celery(settings, set_as_current=False)
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {
        "worker.tasks.product_pass",
        "worker.tasks.rolling_price_refresh",
        "callbacks.tasks.relay_inbox",
        "worker.orders.tasks.reconcile_orders",
    }
    for entry in schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
    assert schedule["product-pass"]["schedule"] == 123
