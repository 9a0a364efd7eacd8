"""The ``sandbox`` click command serves in the foreground, prints its URL, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
from click.testing import CliRunner

from supplier_sandbox.cli import sandbox


def test_command_offers_the_documented_options() -> None:
    result = CliRunner().invoke(sandbox, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host", "--port", "--products", "--seed", "--latency-ms", "--fail-rate",
        "--max-page-size", "--partner-id", "--sign-key", "--callback-url",
    ):  # fmt: skip
        assert option in result.output
    assert sandbox.name == "sandbox"


def test_command_serves_until_interrupted() -> None:
    code = "from supplier_sandbox.cli import sandbox; sandbox()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--products", "4", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "http://127.0.0.1:" in first, first
        url = first.rsplit(" ", 1)[-1].strip()
        with httpx.Client(trust_env=False, timeout=5) as client:
            assert client.get(url + "/_admin/products").json()["total"] == 4
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
