"""Each product's JSON text as a page serves it, kept until the product changes.

A page is mostly the same products written out again; a real supplier's gateway caches what
it serves too. A text is reused only while everything it was written from is the same: the
payload (the store replaces a payload on every edit, never changes one in place, so the very
object tells the version), its corruption, the shape quirks and camelCase. An admin edit or a
setting changed shows on the next page.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from supplier_sandbox.envelope import camelize, dumps
from supplier_sandbox.quirks import shape_product
from supplier_sandbox.store import served_payload


class ServedTexts:
    """Per product: what its text was written from, and the text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._texts: dict[int, tuple[Mapping[str, Any], tuple[Any, ...], str]] = {}

    def text(
        self,
        product_id: int,
        payload: Mapping[str, Any],
        corruption: str | None,
        quirks: frozenset[str],
        camel_case: bool,
    ) -> str:
        """The product's JSON as served; written anew when anything it depends on moved."""
        settings = (corruption, quirks, camel_case)
        with self._lock:
            held = self._texts.get(product_id)
        if held is not None and held[0] is payload and held[1] == settings:
            return held[2]
        text = render_product(payload, corruption, quirks, camel_case)
        with self._lock:
            self._texts[product_id] = (payload, settings, text)
        return text


def render_product(
    payload: Mapping[str, Any], corruption: str | None, quirks: frozenset[str], camel_case: bool
) -> str:
    """One product's JSON text exactly as an uncached page would write it."""
    item: Any = shape_product(served_payload(payload, corruption), quirks)
    return dumps(camelize(item) if camel_case else item)
