"""The masking filter keeps ID numbers, mobiles and the sign key out of logs."""

from __future__ import annotations

import io
import logging

from worker.logs import MaskingFilter, mask, mask_id_card, mask_mobile


def test_mask_hides_id_cards_mobiles_tokens_and_secrets() -> None:
    text = mask(
        "visitor 33010619900101123X mobile 13812345678 old id 330106900101123 "
        "auth Bearer ZZY-OPENAPI:9258:7UR/sKbbQlXGXWY3NNL8AgOb9jg= key zzy-sandbox-signkey",
        ["zzy-sandbox-signkey"],
    )
    for secret in (
        "33010619900101123X",
        "13812345678",
        "330106900101123",
        "7UR/sKbb",
        "zzy-sandbox-signkey",
    ):
        assert secret not in text
    assert "3301" in text and "123X" in text and "138****5678" in text


def test_order_ids_stay_readable() -> None:
    assert mask("order 4553010 product 11063") == "order 4553010 product 11063"


def test_field_maskers() -> None:
    assert mask_id_card("33010619900101123X") == "**************123X"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_id_card(None) is None


def test_filter_masks_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter(["s3cret-key"]))
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("visitor %s called from %s", "33010619900101123X", "13812345678")
        try:
            raise ValueError("bad key s3cret-key for 13812345678")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "33010619900101123X" not in output
    assert "13812345678" not in output
    assert "s3cret-key" not in output
    assert "ValueError" in output and "138****5678" in output
