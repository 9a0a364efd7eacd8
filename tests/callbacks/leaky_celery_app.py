"""A Celery app as deployed (``create_celery`` from the environment) plus one task that logs and
raises with personal data and the sign key, for ``celery -A leaky_celery_app worker``."""

from __future__ import annotations

import logging
import os

from celery.utils.log import get_task_logger

from tests.support.callbacks import ID_NUMBER, MOBILE, SIGN_KEY
from worker.celery_app import create_celery
from worker.settings import load_settings

LEAKY_TASK = "tests.callbacks.leaky"
LEAK = f"Message=visitor {ID_NUMBER} mobile {MOBILE} key {SIGN_KEY}"

app = create_celery(load_settings(), queue=os.environ.get("LEAKY_QUEUE", "leaky"))


@app.task(name=LEAKY_TASK)  # type: ignore[misc]
def leaky() -> None:
    logging.getLogger("worker.supplier.client").warning("supplier rejected the request: %s", LEAK)
    get_task_logger(__name__).warning("task logger: %s", LEAK)
    raise RuntimeError(LEAK)
