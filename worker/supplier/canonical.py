"""A fast lane for payloads already in their plainest lawful form, validated without Python.

A price calendar holds a few rules and up to a few hundred sessions, and the lenient fields of
``worker.supplier.fields`` call a Python function per value (key folding, date forms, blank
strings, negative counts, money bounds): most of a calendar's validation CPU. Nearly every
calendar comes in one plain form, though: the contract's keys in one case, ``yyyy-MM-dd``
dates, strings as strings, counts as non-negative integers, money as Decimals (or integers).

The schemas here accept only that form and check every bound natively (pydantic-core); a date
or an amount in another lawful form falls back to its lenient field alone, and a payload they
refuse goes through the lenient model as before, which decides (and words the errors). So they
must never accept anything the lenient model would refuse or read otherwise: each canonical
field is a subset of its lenient field with the same result
(``tests/sync/test_canonical_payloads.py`` checks both against each other).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, PydanticUndefined, SchemaValidator
from pydantic_core import core_schema as cs

from models.limits import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, MONEY_LIMIT, MONEY_SCALE
from worker.supplier.fields import InfoDateTime, InfoTime, Money, OptDate, ReqDate

KeyStyle = Literal["pascal", "camel"]
STYLES: tuple[KeyStyle, ...] = ("pascal", "camel")


def _or_lenient(native: CoreSchema, lenient: Any) -> CoreSchema:
    """``native``, or when it refuses, the lenient type itself. Only for lenient types without
    side effects: a negative count is logged as read, and would be twice when the canonical
    lane then refuses the payload and the lenient model reads it again."""
    return cs.union_schema([native, TypeAdapter(lenient).core_schema], mode="left_to_right")


# ``yyyy-MM-dd`` as ``date.fromisoformat`` reads it (the lenient date's first try).
_ISO_DATE = cs.chain_schema(
    [cs.str_schema(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", strict=True), cs.date_schema()]
)
DATE = _or_lenient(_ISO_DATE, ReqDate)
OPT_DATE = _or_lenient(cs.nullable_schema(_ISO_DATE), OptDate)  # "" is None, as in the rules
# Money as a Decimal or an integer (never a float, never text), fitting Numeric(12, 2).
MONEY = _or_lenient(
    cs.chain_schema(
        [
            cs.union_schema([cs.is_instance_schema(Decimal), cs.int_schema(strict=True)]),
            cs.decimal_schema(
                allow_inf_nan=False, gt=-MONEY_LIMIT, lt=MONEY_LIMIT, decimal_places=MONEY_SCALE
            ),
        ]
    ),
    Money,
)
# A stock or count: non-negative (a negative one is read as 0 and logged by the lenient model).
COUNT = cs.int_schema(ge=0, le=INT32_MAX, strict=True)
PRICE_TYPE = cs.chain_schema([cs.int_schema(strict=True), cs.literal_schema([1, 2, 3])])
INT32 = cs.int_schema(ge=INT32_MIN, le=INT32_MAX, strict=True)
INT64 = cs.int_schema(ge=INT64_MIN, le=INT64_MAX, strict=True)
# ``yyyy-MM-dd HH:mm:ss`` (or with ``T``) as the lenient date-time reads it; any other form,
# or one that does not parse, through the lenient field (which keeps the text).
_PLAIN_DATETIME = cs.chain_schema(
    [
        cs.str_schema(
            pattern=r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
            strict=True,
        ),
        cs.datetime_schema(),
    ]
)
INFO_DATETIME = _or_lenient(cs.nullable_schema(_PLAIN_DATETIME), InfoDateTime)
# ``HH:mm`` as the lenient time of day reads it.
_PLAIN_TIME = cs.chain_schema(
    [cs.str_schema(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", strict=True), cs.time_schema()]
)
INFO_TIME = _or_lenient(cs.nullable_schema(_PLAIN_TIME), InfoTime)


def text(max_length: int | None = None) -> CoreSchema:
    """A string as sent, at most ``max_length`` characters."""
    return cs.str_schema(max_length=max_length, strict=True)


def optional(schema: CoreSchema) -> CoreSchema:
    """``schema`` or None (a missing optional key is its field's default)."""
    return cs.nullable_schema(schema)


def key(alias: str, style: KeyStyle) -> str:
    """The contract's key in one style: ``DailyStock`` or ``dailyStock``."""
    return alias if style == "pascal" else alias[:1].lower() + alias[1:]


def model(
    model_cls: type[BaseModel],
    fields: Mapping[str, CoreSchema],
    style: KeyStyle,
) -> CoreSchema:
    """``model_cls`` built from exactly ``fields``, each under its alias in ``style``; any other
    key refuses the payload (it may fold onto a field in the lenient model)."""
    built: dict[str, cs.ModelField] = {}
    for name, schema in fields.items():
        info = model_cls.model_fields[name]
        if info.default_factory is not None:
            factory: Callable[[], Any] = info.default_factory  # type: ignore[assignment]
            schema = cs.with_default_schema(schema, default_factory=factory)
        elif info.default is not PydanticUndefined:
            schema = cs.with_default_schema(schema, default=info.default)
        built[name] = cs.model_field(schema, validation_alias=key(info.alias or name, style))
    if set(built) != set(model_cls.model_fields):
        raise ValueError(f"{model_cls.__name__}: every field needs a canonical schema")
    return cs.model_schema(model_cls, cs.model_fields_schema(built, extra_behavior="forbid"))


def validator(schema: CoreSchema, models: tuple[type[BaseModel], ...]) -> SchemaValidator:
    """A validator of ``schema`` itself.

    pydantic-core reuses a finished model's own validator wherever a schema names its class,
    which would put the lenient path back in; the models are marked unfinished while this one
    is built (a no-op if that reuse ever changes: the lenient result is the same, only slower).
    """
    for model_cls in models:
        type.__setattr__(model_cls, "__pydantic_complete__", False)
    try:
        return SchemaValidator(schema)
    finally:
        for model_cls in models:
            type.__setattr__(model_cls, "__pydantic_complete__", True)


def plain(validators: Mapping[KeyStyle, SchemaValidator], style: KeyStyle | None, data: Any) -> Any:
    """What the validator of ``data``'s key style makes of it, or None when ``data`` is not in
    a plain form it accepts (the lenient model then decides)."""
    if style is None:
        return None
    try:
        return validators[style].validate_python(data)
    except ValidationError:
        return None
