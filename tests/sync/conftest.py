"""Fixtures for the sync tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.sync import make_client
from worker.supplier.client import SupplierClient


@pytest.fixture
def supplier(sandbox: Any) -> Iterator[SupplierClient]:
    client = make_client(sandbox.url)
    yield client
    client.close()
