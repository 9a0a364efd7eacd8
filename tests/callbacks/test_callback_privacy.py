"""No full ID number or mobile at rest or in output: a dump of the whole database and every
``catalog-sync`` command's output, after notices carrying them in every form we know of
(structured fields, free text, ``+86``, separated, full-width, inside bodies that are invalid
or not even JSON), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import unicodedata
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.support.callbacks import (
    ID_NUMBER,
    MOBILE,
    SAMPLES,
    Sent,
    cli_env,
    deliver,
    envelope,
    rows,
    run,
    serving,
)
from worker.cli import main
from worker.logs import mask
from worker.runtime import build_runtime, set_runtime

pytestmark = pytest.mark.timeout(120)

OTHER_ID = "110101199003071234"
FORMS = [
    f"身份证{OTHER_ID}",
    f"身份证 {OTHER_ID[:6]} {OTHER_ID[6:14]} {OTHER_ID[14:]}",
    "身份证" + "".join(chr(ord(c) + 0xFEE0) for c in OTHER_ID),
    f"手机+86{MOBILE}",
    f"手机 +86 {MOBILE[:3]} {MOBILE[3:7]} {MOBILE[7:]}",
    f"手机{MOBILE[:3]}-{MOBILE[3:7]}-{MOBILE[7:]}",
    "手机" + "".join(chr(ord(c) + 0xFEE0) for c in MOBILE),
    f"证件{OTHER_ID}abc",
]
SECRETS = (ID_NUMBER, OTHER_ID, MOBILE)


def leaks(text: str) -> list[str]:
    """Which of the secrets appear in ``text``, in any width or with separators."""
    folded = re.sub(r"[\s\-－‐]", "", unicodedata.normalize("NFKC", text))
    return [secret for secret in SECRETS if secret in folded]


def _notices() -> list[Any]:
    reason = " / ".join(FORMS)
    ticket = SAMPLES["order_ticket_notify"]
    return [
        envelope("order_ticket_notify", ticket),
        envelope("order_refund_notify", {**SAMPLES["order_refund_notify"], "RefundReason": reason}),
        envelope(
            "order_refund_notify",
            {"OrderId": 5, "RefundStatus": 1, "RefundReason": reason, "RefundApplyNo": ""},
        ),
        envelope("order_teleport_notify", {"OrderId": 1, "Mobile": MOBILE, "Note": reason}),
        envelope("order_ticket_notify", {**ticket, "TicketStatus": "x", "Memo": reason}),
        f'{{"broken": "{reason}"'.encode(),
        b"\xff" + reason.encode("utf-8"),
        envelope("order_verify_notify", {**SAMPLES["order_verify_notify"], "CheckedNumber": 1}),
    ]


def _dump(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database or "")
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(
        ["pg_dump", "--data-only", plain], capture_output=True, text=True, check=True
    ).stdout


def test_no_full_id_number_or_mobile_in_a_database_dump_or_any_cli_output(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, cb_settings: Any
) -> None:
    with serving(app) as url:
        for notice in _notices():
            assert deliver(url, notice).status_code == 200
    for inbox_id in sent.ids:
        run(sessions, inbox_id)
    stored = rows(sessions)
    assert {r.status for r in stored} >= {"done", "invalid"}
    dump = _dump(cb_settings.database_url)
    assert "RefundReason" in dump or "refund_reason" in dump  # the dump is the real thing
    assert leaks(dump) == [], "personal data at rest"

    runtime = build_runtime(cb_settings)
    set_runtime(runtime)
    try:
        cli = CliRunner()
        outputs = [
            cli.invoke(main, ["inbox", "list"]),
            cli.invoke(main, ["inbox", "list", "--json"]),
            cli.invoke(main, ["inbox", "list", "--status", "invalid"]),
            *(cli.invoke(main, ["inbox", "show", str(r.id)]) for r in stored),
            cli.invoke(main, ["inbox", "replay", "--status", "invalid"]),
            cli.invoke(main, ["status"], env=cli_env(cb_settings)),
            cli.invoke(main, ["status", "--json"], env=cli_env(cb_settings)),
        ]
    finally:
        set_runtime(None)
        runtime.close()
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert leaks(result.output) == [], result.output
    shown = json.loads(outputs[3].stdout)
    assert shown["payload"]["VoucherCode"]["OrderUserVouchers"][0]["IDCardNo"].endswith("6666")


@pytest.mark.parametrize("form", FORMS)
def test_masking_catches_every_form_in_free_text(form: str) -> None:
    assert leaks(form) != []  # the form really holds the number
    assert leaks(mask(form)) == []


def test_masking_leaves_order_numbers_and_voucher_codes_alone() -> None:
    for text in ("4553010", "1522870633233514497", "202052255633322222124", "V-2020522-2"):
        assert mask(text) == text
