"""A product entry's fingerprint (``entry_fingerprint``): equal entries alike, any difference seen.

An unchanged pass skips an entry whose fingerprint its row holds, so a fingerprint that missed
a difference would hide a change, and one that moved for an equal entry would cost a full read.
"""

from __future__ import annotations

import copy
import json
import sys
from decimal import Decimal
from typing import Any

import pytest

from worker.sync.product_rows import entry_fingerprint

ENTRY = (
    '{"ProductId": 10204, "Version": 1, "ProductName": "九寨沟亲子票", "IsTicket": 0, '
    '"AdultNumber": null, "Flags": [1, "a", true], "Ok": false}'
)


def parsed(text: str = ENTRY, **options: Any) -> Any:
    return json.loads(text, **options)


def test_equal_entries_share_a_fingerprint_however_they_were_built() -> None:
    first, again = parsed(), parsed()
    shared = [first] * 3  # strings and the dict referenced many times over
    interned = {sys.intern(k): v for k, v in parsed().items()}
    assert entry_fingerprint(first) == entry_fingerprint(again)
    assert entry_fingerprint(shared[0]) == entry_fingerprint(interned)
    assert entry_fingerprint(copy.deepcopy(first)) == entry_fingerprint(first)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("IsTicket", False),
        ("IsTicket", "0"),
        ("IsTicket", 0.0),
        ("IsTicket", None),
        ("AdultNumber", ""),
        ("AdultNumber", 0),
        ("ProductName", "九寨沟亲子票 "),
        ("Flags", [1, "a", 1]),
        ("Flags", (1, "a", True)),
        ("Version", 2**70),
    ],
)
def test_any_change_of_value_or_type_changes_it(field: str, value: Any) -> None:
    changed = parsed()
    changed[field] = value
    assert entry_fingerprint(changed) != entry_fingerprint(parsed())


def test_key_order_and_key_case_change_it() -> None:
    entry = parsed()
    reordered = dict(reversed(list(entry.items())))
    recased = {("productId" if k == "ProductId" else k): v for k, v in entry.items()}
    assert len({entry_fingerprint(e) for e in (entry, reordered, recased)}) == 3


def test_entries_with_decimals_are_fingerprinted_and_told_from_text() -> None:
    text = ENTRY[:-1] + ', "Price": 12.50}'
    with_decimal = parsed(text, parse_float=Decimal)
    as_text = {**with_decimal, "Price": "12.50"}
    assert entry_fingerprint(with_decimal) == entry_fingerprint(parsed(text, parse_float=Decimal))
    assert entry_fingerprint(with_decimal) != entry_fingerprint(as_text)
    assert entry_fingerprint(with_decimal) != entry_fingerprint(
        parsed(text.replace("12.50", "12.5"), parse_float=Decimal)
    )
