"""Fuzzing the callback receiver with signed notices, mutated in their bytes and their headers.

Each example starts from a lawful signed notice (product change, ticket issued, redeemed,
refunded), mutates the body (byte flips, truncation, duplication, JSON type swaps, deep
nesting, huge numbers, duplicate keys, other encodings, oversize) and the headers (partner
id, timestamp, signature, content type; each mutation labelled by whether the signature
still verifies), sends it, then processes every row it stored. The properties:

* never a 5xx;
* a request whose signature does not verify is refused with 401 or 403 and stores nothing;
* a verified request is acknowledged and stored (never refused for its body), unless the
  body is larger than ``CALLBACK_MAX_BODY`` (413, nothing stored);
* a row stored or processed as invalid (or held) never changes the ledger or the catalog.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.intake import SUCCESS, Notice, classify, dedupe_key
from models.inbox import InboxMessage, InboxSignature
from models.orders import Order, OrderEvent, OrderRefund
from tests.support.callbacks import (
    PARTNER_ID,
    PATH,
    SIGN_KEY,
    FakeCatalog,
    envelope,
    run,
    stamps,
)
from tests.support.fuzz import FUZZ, FUZZ_TIMEOUT_S, lawful_notice
from worker.supplier.signing import AUTH_PUB, sign

pytestmark = pytest.mark.timeout(FUZZ_TIMEOUT_S)

MAX_BODY = 65536  # the default CALLBACK_MAX_BODY the test settings keep
TOLERANCE_MS = 300_000


# --- headers: each mutation says whether the signature still verifies ------------------------


@dataclass(frozen=True)
class Headers:
    values: dict[str, str]
    verifies: bool
    how: str


def _base(stamp: int) -> dict[str, str]:
    token = sign(PARTNER_ID, stamp, PATH, SIGN_KEY)
    return {
        "PartnerId": str(PARTNER_ID),
        "Timestamp": str(stamp),
        "Authorization": f"Bearer {AUTH_PUB}:{PARTNER_ID}:{token}",
        "Content-Type": "application/json",
    }


def _signed_as(partner: int, stamp: int, key: str = SIGN_KEY) -> dict[str, str]:
    """Headers correctly signed for another partner id or timestamp (only the window or the
    partner check can refuse them)."""
    token = sign(partner, stamp, PATH, key)
    return {
        "PartnerId": str(partner),
        "Timestamp": str(stamp),
        "Authorization": f"Bearer {AUTH_PUB}:{partner}:{token}",
        "Content-Type": "application/json",
    }


def _with(stamp: int, **changes: str | None) -> dict[str, str]:
    values = _base(stamp)
    for name, value in changes.items():
        key = name.replace("_", "-") if name == "Content_Type" else name
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def _bearer(partner: str, token: str, pub: str = AUTH_PUB, scheme: str = "Bearer") -> str:
    return f"{scheme} {pub}:{partner}:{token}"


def _flip_char(token: str, index: int) -> str:
    """Another base64 character at ``index`` (< 24: bits that are all part of the digest)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    current = alphabet.index(token[index])
    return token[:index] + alphabet[(current + 17) % 64] + token[index + 1 :]


def header_table(
    stamp: int, flip_at: int = 5, keep: int = 10
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Every header mutation, signed at ``stamp``: (those that verify, those that do not)."""
    token = sign(PARTNER_ID, stamp, PATH, SIGN_KEY)
    pid = str(PARTNER_ID)
    valid: dict[str, dict[str, str]] = {
        "as-signed": _base(stamp),
        "no-content-type": _with(stamp, Content_Type=None),
        "text-plain": _with(stamp, Content_Type="text/plain; charset=gbk"),
        "form": _with(stamp, Content_Type="application/x-www-form-urlencoded"),
        "garbage-type": _with(stamp, Content_Type="\x7f;;=="),
        "names-lower": {k.lower(): v for k, v in _base(stamp).items()},
        "names-upper": {k.upper(): v for k, v in _base(stamp).items()},
        "spaces": {k: f"  {v} " for k, v in _base(stamp).items()},
        "bearer-lower": _with(stamp, Authorization=_bearer(pid, token, scheme="bearer")),
        "extra-header": {**_base(stamp), "X-Partner-Id": "1", "Sign": "nonsense"},
    }
    other = sign(PARTNER_ID, stamp, PATH, "another-key")
    refused: dict[str, dict[str, str]] = {
        "no-partner": _with(stamp, PartnerId=None),
        "no-timestamp": _with(stamp, Timestamp=None),
        "no-authorization": _with(stamp, Authorization=None),
        "nothing": {"Content-Type": "application/json"},
        "partner-other": _with(stamp, PartnerId="9259"),
        "partner-other-signed": _signed_as(9259, stamp),
        "partner-empty": _with(stamp, PartnerId=""),
        "partner-word": _with(stamp, PartnerId="partner"),
        "partner-padded": _with(stamp, PartnerId="09258"),
        "partner-fullwidth": _with(
            stamp, PartnerId="9258".translate({48 + i: 0xFF10 + i for i in range(10)})
        ),
        "partner-negative": _with(stamp, PartnerId="-9258"),
        "partner-huge": _with(stamp, PartnerId="9" * 400),
        "timestamp-stale": _with(stamp, Timestamp=str(stamp - TOLERANCE_MS - 120_000)),
        "timestamp-stale-signed": _signed_as(PARTNER_ID, stamp - TOLERANCE_MS - 120_000),
        "timestamp-future-signed": _signed_as(PARTNER_ID, stamp + TOLERANCE_MS + 120_000),
        "timestamp-epoch-signed": _signed_as(PARTNER_ID, 0),
        "timestamp-moved": _with(stamp, Timestamp=str(stamp + 1)),
        "timestamp-seconds-signed": _signed_as(PARTNER_ID, stamp // 1000),
        "timestamp-word": _with(stamp, Timestamp="now"),
        "timestamp-float": _with(stamp, Timestamp=f"{stamp}.0"),
        "timestamp-long": _with(stamp, Timestamp="9" * 40),
        "timestamp-negative": _with(stamp, Timestamp=f"-{stamp}"),
        "signature-other-key": _with(stamp, Authorization=_bearer(pid, other)),
        "signature-other-path": _with(
            stamp, Authorization=_bearer(pid, sign(PARTNER_ID, stamp, "/callbacks/other", SIGN_KEY))
        ),
        "signature-flipped": _with(stamp, Authorization=_bearer(pid, _flip_char(token, flip_at))),
        "signature-truncated": _with(stamp, Authorization=_bearer(pid, token[:keep])),
        "signature-not-base64": _with(stamp, Authorization=_bearer(pid, "!!" + token[2:])),
        "signature-unpadded": _with(stamp, Authorization=_bearer(pid, token.rstrip("="))),
        "signature-urlsafe": _with(
            stamp,
            Authorization=_bearer(
                pid,
                base64.urlsafe_b64encode(base64.b64decode(token)).decode().replace("-", "_"),
            )
            if ("+" in token or "/" in token)
            else _bearer(pid, other),
        ),
        "signature-empty": _with(stamp, Authorization=_bearer(pid, "")),
        "signature-huge": _with(stamp, Authorization=_bearer(pid, token * 30)),
        "token-partner-other": _with(stamp, Authorization=_bearer("9259", token)),
        "token-pub-other": _with(stamp, Authorization=_bearer(pid, token, pub="ZZY-OPENAPX")),
        "scheme-basic": _with(stamp, Authorization=_bearer(pid, token, scheme="Basic")),
        "scheme-missing": _with(stamp, Authorization=f"{AUTH_PUB}:{pid}:{token}"),
        "authorization-empty": _with(stamp, Authorization=""),
    }
    return valid, refused


@st.composite
def headers(draw: st.DrawFn, verifies: bool | None = None) -> Headers:
    valid, refused = header_table(
        next(stamps), flip_at=draw(st.integers(0, 23)), keep=draw(st.integers(0, 26))
    )
    if verifies is None:
        verifies = draw(st.booleans())
    table = valid if verifies else refused
    how = draw(st.sampled_from(sorted(table)))
    return Headers(table[how], verifies, how)


# --- bodies: a lawful signed notice, mutated ---------------------------------------------------

HUGE_NUMBERS = [
    "1e400",
    "-1e400",
    "1e-400",
    "9" * 5000,
    "-" + "9" * 40,
    "18446744073709551616",
    "9223372036854775808",
    "-0",
    "0.0000000000000000000001",
    "NaN",
    "Infinity",
    "-Infinity",
    "1E+2",
]
OTHER_TYPES: list[Any] = [None, True, False, "", "1", "一", 1.5, -1, 0, [], {}, [1], {"a": 1}]


def _raw_number(body: dict[str, Any], key: str, raw: str, as_string: bool) -> bytes:
    """The envelope with ``body[key]`` written as raw JSON text (numbers json cannot make)."""
    marker = "__RAW_NUMBER__"
    inner = json.dumps({**body, key: marker}, ensure_ascii=False)
    inner = inner.replace(json.dumps(marker), raw)
    return _wrap(inner, as_string)


def _wrap(inner_json: str, as_string: bool, service: str = "") -> bytes:
    header = json.dumps({"PartnerId": PARTNER_ID, "NotifyServiceName": service})
    body = json.dumps(inner_json, ensure_ascii=False) if as_string else inner_json
    return _utf8(f'{{"OrderNotifyHeader": {header}, "OrderNotifyBody": {body}}}')


def _utf8(text: str) -> bytes:
    """UTF-8, a lone surrogate written as its (invalid) bytes: the receiver must cope."""
    return text.encode("utf-8", "surrogatepass")


def _nest(value: Any, depth: int, as_list: bool) -> str:
    inner = json.dumps(value, ensure_ascii=False)
    return (
        ("[" * depth + inner + "]" * depth) if as_list else ('{"a":' * depth + inner + "}" * depth)
    )


MUTATIONS = (
    "none",
    "flip",
    "truncate",
    "duplicate",
    "duplicate-slice",
    "type-swap",
    "drop-key",
    "deep-nest",
    "huge-number",
    "duplicate-key",
    "duplicate-envelope-key",
    "encoding",
    "oversize",
    "at-limit",
    "empty",
)


@st.composite
def mutated_body(draw: st.DrawFn, kinds: tuple[str, ...] = MUTATIONS) -> tuple[str, bytes]:
    service, body = draw(lawful_notice())
    as_string = draw(st.booleans())
    lawful = envelope(service, body, as_string=as_string)
    signed_body = json.dumps(lawful, ensure_ascii=False)
    if any("\ud800" <= char <= "\udfff" for char in signed_body):
        signed_body = json.dumps(lawful)  # escaped, so the unmutated body stays valid UTF-8
    original = signed_body.encode()
    how = draw(st.sampled_from(kinds))
    keys = sorted(body)
    if how == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            index = draw(st.integers(0, len(data) - 1))
            data[index] ^= draw(st.integers(1, 255))
        return how, bytes(data)
    if how == "truncate":
        return how, original[: draw(st.integers(0, len(original) - 1))]
    if how == "duplicate":
        return how, original + draw(st.sampled_from([b"", b"\n", b","])) + original
    if how == "duplicate-slice":
        start = draw(st.integers(0, len(original) - 1))
        end = draw(st.integers(start, len(original)))
        return how, original[:end] + original[start:end] + original[end:]
    if how == "type-swap":
        key = draw(st.sampled_from(keys))
        return how, _wrap(
            json.dumps({**body, key: draw(st.sampled_from(OTHER_TYPES))}, ensure_ascii=False),
            as_string,
            service,
        )
    if how == "drop-key":
        key = draw(st.sampled_from(keys))
        rest = {k: v for k, v in body.items() if k != key}
        return how, _wrap(json.dumps(rest, ensure_ascii=False), as_string, service)
    if how == "deep-nest":
        depth = draw(st.sampled_from([2, 50, 900, 1100, 5000, 30_000]))
        as_list = draw(st.booleans())
        where = draw(st.sampled_from(["field", "body", "envelope"]))
        if where == "envelope":
            return how, _utf8(_nest(lawful, depth, as_list))
        if where == "body":
            return how, _wrap(_nest(body, depth, as_list), as_string, service)
        key = draw(st.sampled_from(keys))
        inner = json.dumps({**body, key: "__NEST__"}, ensure_ascii=False)
        inner = inner.replace('"__NEST__"', _nest(body[key], depth, as_list))
        return how, _wrap(inner, as_string, service)
    if how == "huge-number":
        key = draw(st.sampled_from(keys))
        return how, _raw_number(body, key, draw(st.sampled_from(HUGE_NUMBERS)), as_string)
    if how == "duplicate-key":
        key = draw(st.sampled_from(keys))
        spelled = draw(st.sampled_from([key, key.lower(), key.upper()]))
        extra = json.dumps(draw(st.sampled_from(OTHER_TYPES)), ensure_ascii=False)
        inner = json.dumps(body, ensure_ascii=False)
        inner = inner[:-1] + f', "{spelled}": {extra}}}' if body else f'{{"{spelled}": {extra}}}'
        return how, _wrap(inner, as_string, service)
    if how == "duplicate-envelope-key":
        (service_2, body_2) = draw(lawful_notice())
        second = envelope(service_2, body_2, as_string=as_string)
        name = draw(st.sampled_from(["OrderNotifyBody", "ordernotifybody", "OrderNotifyHeader"]))
        extra = json.dumps(
            second["OrderNotifyBody" if "body" in name.lower() else "OrderNotifyHeader"],
            ensure_ascii=False,
        )
        return how, original[:-1] + _utf8(f', "{name}": {extra}}}')
    if how == "encoding":
        codec = draw(st.sampled_from(["utf-16", "utf-32", "gb18030", "utf-8-sig", "latin-1"]))
        return how, signed_body.encode(
            codec, errors="surrogatepass" if "utf" in codec else "replace"
        )
    if how == "oversize":
        size = draw(st.sampled_from([MAX_BODY + 1, MAX_BODY * 2, MAX_BODY * 16]))
        return how, original + b" " * (size - len(original))
    if how == "at-limit":
        return how, original + b" " * (MAX_BODY - len(original))
    if how == "empty":
        return how, b""
    return how, original


# --- the oracle's view of the database -------------------------------------------------------


def _ledger(sessions: sessionmaker[Session]) -> tuple[Any, ...]:
    with sessions() as session:
        orders = [
            (
                o.id,
                o.supplier_order_id,
                o.origin_order_id,
                o.ticket_status,
                o.order_voucher_code,
                o.visitor_vouchers,
                o.order_total,
                o.checked_number,
                o.redeemed_vouchers,
                o.refund_status,
                o.refunded_vouchers,
                o.status,
                o.redeemed_quantity,
                o.refunded_quantity,
            )
            for o in session.scalars(select(Order).order_by(Order.id))
        ]
        events = session.scalar(select(func.count()).select_from(OrderEvent))
        refunds = session.scalar(select(func.count()).select_from(OrderRefund))
    return (orders, events, refunds)


def _counts(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as session:
        inbox = session.scalar(select(func.count()).select_from(InboxMessage)) or 0
        seen = session.scalar(select(func.count()).select_from(InboxSignature)) or 0
    return int(inbox), int(seen)


def _known_notice(sessions: sessionmaker[Session], body: bytes) -> bool:
    """Whether the body is an order notice already stored (a resend: no new row)."""
    verdict = classify(body, PARTNER_ID)
    if not isinstance(verdict, Notice) or verdict.by_delivery:
        return False
    key = dedupe_key(verdict.service_name, verdict.payload, "")
    with sessions() as session:
        return (
            session.scalar(select(InboxMessage.id).where(InboxMessage.dedupe_key == key))
            is not None
        )


def _status(sessions: sessionmaker[Session], inbox_id: int) -> str:
    with sessions() as session:
        return str(
            session.scalars(select(InboxMessage.status).where(InboxMessage.id == inbox_id)).one()
        )


@given(head=headers(), mutation=mutated_body(), resend=st.booleans())
@FUZZ
def test_fuzz_signed_and_mutated_callbacks(
    app: Flask,
    sessions: sessionmaker[Session],
    head: Headers,
    mutation: tuple[str, bytes],
    resend: bool,
) -> None:
    check_delivery(app, sessions, head, mutation, resend)


@given(data=st.data())
@settings(parent=FUZZ, max_examples=max(3, FUZZ.max_examples // 20))
def test_fuzz_every_mutation_kind_under_a_verified_signature(
    app: Flask, sessions: sessionmaker[Session], data: st.DataObject
) -> None:
    """Each kind in every example: the random mix above may miss one in a short run."""
    for kind in MUTATIONS:
        head = data.draw(headers(verifies=True), label=f"headers for {kind}")
        mutation = data.draw(mutated_body(kinds=(kind,)), label=kind)
        check_delivery(app, sessions, head, mutation, resend=False)


def check_delivery(
    app: Flask,
    sessions: sessionmaker[Session],
    head: Headers,
    mutation: tuple[str, bytes],
    resend: bool,
) -> None:
    """Send one (mutated) delivery, process what it stored, and check every property."""
    how, body = mutation
    client = app.test_client()
    before_counts, before_ledger = _counts(sessions), _ledger(sessions)
    known = _known_notice(sessions, body)
    with sessions() as session:
        newest_before = session.scalar(select(func.max(InboxMessage.id))) or 0

    replies = [client.post(PATH, data=body, headers=head.values) for _ in range(1 + resend)]
    context = f"headers {head.how}, body {how}: {body[:200]!r}"
    assert all(r.status_code < 500 for r in replies), ([r.status_code for r in replies], context)

    if not head.verifies:
        assert all(r.status_code in (401, 403) for r in replies), context
        assert all(r.get_json()["IsSuccess"] is False for r in replies), context
        assert _counts(sessions) == before_counts, context
        return
    if len(body) > MAX_BODY:
        assert all(r.status_code == 413 for r in replies), context
        assert _counts(sessions)[0] == before_counts[0], context
        return
    assert all((r.status_code, r.get_json()) == (200, SUCCESS) for r in replies), context
    after_inbox = _counts(sessions)[0]
    assert after_inbox == before_counts[0] + (0 if known else 1), context

    # Process whatever was stored: an invalid or held row changes nothing; nor does a pending
    # row that processing finds invalid.
    with sessions() as session:
        new_ids = list(
            session.scalars(
                select(InboxMessage.id)
                .where(InboxMessage.id > newest_before)
                .order_by(InboxMessage.id)
            )
        )
    for inbox_id in new_ids:
        catalog = FakeCatalog()
        ledger_before = _ledger(sessions)
        stored_as = _status(sessions, inbox_id)
        outcome = run(sessions, inbox_id, catalog)
        if stored_as != "pending" or _status(sessions, inbox_id) != "done":
            assert outcome.state != "done", (stored_as, outcome, context)
            assert catalog.calls == [], context
            assert _ledger(sessions) == ledger_before, (stored_as, outcome, context)
    if how == "none":
        # The mutation left the body alone: it is lawful, so it was stored pending and applied.
        assert [_status(sessions, i) for i in new_ids] in ([], ["done"]), context
    if not new_ids:
        assert _ledger(sessions) == before_ledger, context


def test_each_header_mutation_is_refused_or_accepted_as_labelled(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    """Every label once (the property test samples them): refusals store nothing."""
    client = app.test_client()
    body = json.dumps(envelope("order_product_notify", {"ProductId": 7, "Status": 3})).encode()
    valid, refused = header_table(next(stamps))
    for how in sorted(valid) + sorted(refused):
        values = header_table(next(stamps))[0 if how in valid else 1][how]
        before = _counts(sessions)
        reply = client.post(PATH, data=body, headers=values)
        if how in valid:
            assert (reply.status_code, reply.get_json()) == (200, SUCCESS), how
            assert _counts(sessions)[0] == before[0] + 1, how
        else:
            assert reply.status_code in (401, 403), (how, reply.status_code)
            assert reply.get_json()["IsSuccess"] is False, how
            assert _counts(sessions) == before, how
