"""The OpenAPI 3.1 document of this API, written by hand to match the real responses (the test
suite checks that with schemathesis)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from catalog_api.params import DEFAULT_LIMIT, MAX_CALENDAR_DAYS, MAX_ID, MAX_LIMIT, MAX_WAIT_S
from catalog_api.representations import PRODUCT_FIELDS

bp = Blueprint("openapi", __name__)

MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "description": "decimal, 2 places"}
TIMESTAMP = {"type": "string", "format": "date-time"}
DATE = {"type": "string", "format": "date"}
ID = {"type": "integer", "minimum": 0, "maximum": MAX_ID}

_TEXT_FIELDS = {
    "product_code",
    "ticket_get_address",
    "product_desc",
    "product_kind",
    "scenic_spots",
    "out_id",
    "begin_effective_time",
    "end_effective_time",
    "booking_time",
}
_REQUIRED_INT_FIELDS = {"product_id", "version", "product_status"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _product_properties() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name in PRODUCT_FIELDS:
        if name == "product_name":
            properties[name] = {"type": "string"}
        elif name in _TEXT_FIELDS:
            properties[name] = {"type": ["string", "null"]}
        elif name in _REQUIRED_INT_FIELDS:
            properties[name] = {"type": "integer"}
        elif name == "total_stock":
            properties[name] = {"type": ["integer", "null"], "description": "null when unlimited"}
        else:
            properties[name] = {"type": ["integer", "null"]}
    properties.update(
        status={"type": "string", "enum": ["on_shelf", "off_shelf"]},
        authorized={"type": "boolean"},
        updated_at=TIMESTAMP,
        prices_refreshed_at=_nullable(TIMESTAMP),
        deauthorized_at=_nullable(TIMESTAMP),
    )
    return properties


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


ERRORS = {
    "400": {"description": "a parameter is malformed or out of range", "content": _json("Error")},
    "401": {"description": "the bearer token is missing or wrong", "content": _json("Error")},
    "503": {"description": "the database is unavailable; retry later", "content": _json("Error")},
}
NOT_FOUND = {"404": {"description": "no such product", "content": _json("Error")}}
ETAG_HEADER = {
    "ETag": {"schema": {"type": "string"}, "description": "strong validator of the body"}
}
NOT_MODIFIED = {"304": {"description": "If-None-Match matched the current ETag"}}
PRODUCT_ID = {"name": "product_id", "in": "path", "required": True, "schema": ID}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    product = _product_properties()
    detail = dict(product)
    detail.update(
        lowest_sale_price=_nullable(MONEY),
        price_window=_object({"from": DATE, "to": DATE}),
    )
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Catalog read API",
            "version": "1.0.0",
            "description": (
                "Read-only access to the distributor's local copy of the supplier catalog. "
                "Money is a decimal string, dates are ISO 8601, calendar dates are Asia/Shanghai."
            ),
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/catalog/products": {
                "get": {
                    "operationId": "listProducts",
                    "summary": "Products in product_id order, keyset-paginated",
                    "description": (
                        "next_cursor is opaque (URL-safe base64 of the last key) and null on "
                        "the last page. Rows written between pages never move a page boundary."
                    ),
                    "parameters": [
                        _query(
                            "status",
                            {"type": "string", "enum": ["on_shelf", "off_shelf"]},
                            "shelf status; any when absent",
                        ),
                        _query("scenic_id", ID, "only this scenic spot"),
                        _query(
                            "authorized",
                            {"type": "string", "enum": ["true", "false", "any"], "default": "true"},
                            "authorization; true by default",
                        ),
                        _query(
                            "updated_since",
                            {"type": "string", "format": "date-time"},
                            "updated at or after: a date-time with an offset, or YYYY-MM-DD (midnight Asia/Shanghai)",
                        ),
                        _query(
                            "limit",
                            limit,
                            f"page size, default {DEFAULT_LIMIT}, at most {MAX_LIMIT}",
                        ),
                        _query("cursor", {"type": "string"}, "next_cursor from the previous page"),
                    ],
                    "responses": {
                        "200": {
                            "description": "a page of products",
                            "content": _json("ProductPage"),
                        },
                        **ERRORS,
                    },
                }
            },
            "/catalog/products/{product_id}": {
                "get": {
                    "operationId": "getProduct",
                    "summary": "One product with the lowest sale price over the price window",
                    "parameters": [PRODUCT_ID, IF_NONE_MATCH],
                    "responses": {
                        "200": {
                            "description": "the product",
                            "headers": ETAG_HEADER,
                            "content": _json("ProductDetail"),
                        },
                        **NOT_MODIFIED,
                        **ERRORS,
                        **NOT_FOUND,
                    },
                }
            },
            "/catalog/products/{product_id}/calendar": {
                "get": {
                    "operationId": "getCalendar",
                    "summary": "Priced days between from and to (inclusive) with their sessions",
                    "parameters": [
                        PRODUCT_ID,
                        _query("from", DATE, "first day; default today (Asia/Shanghai)"),
                        _query(
                            "to",
                            DATE,
                            f"last day; default from + price_window_days; span at most {MAX_CALENDAR_DAYS} days",
                        ),
                        _query(
                            "bookable",
                            {"type": "string", "enum": ["true", "false"]},
                            "true: only days that can still be booked now (bookable_until not "
                            "passed, evaluated at request time); false: only those that cannot",
                        ),
                        IF_NONE_MATCH,
                    ],
                    "responses": {
                        "200": {
                            "description": "the calendar",
                            "headers": ETAG_HEADER,
                            "content": _json("Calendar"),
                        },
                        **NOT_MODIFIED,
                        **ERRORS,
                        **NOT_FOUND,
                    },
                }
            },
            "/catalog/changes": {
                "get": {
                    "operationId": "listChanges",
                    "summary": "The change feed after a seq, in order; follow next_after",
                    "description": (
                        "Pass next_after back as after. A seq that a transaction still in flight "
                        "may commit later is never passed: a page stops before a hole in the "
                        "sequence until no writer is in flight or the hole has persisted for the "
                        "settle delay (10 s by default), so a consumer neither misses nor "
                        "repeats a change. has_more is true when the page is full. With wait, "
                        "an empty answer is held until a change past after commits (answered "
                        "within about a second of the commit) or wait seconds pass."
                    ),
                    "parameters": [
                        _query("after", ID, "the last seq already read (next_after); 0 by default"),
                        _query(
                            "wait",
                            {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_S, "default": 0},
                            f"long-poll: seconds to wait for a change when there is none yet "
                            f"(at most {MAX_WAIT_S})",
                        ),
                        _query(
                            "limit",
                            limit,
                            f"page size, default {DEFAULT_LIMIT}, at most {MAX_LIMIT}",
                        ),
                    ],
                    "responses": {
                        "200": {"description": "a page of changes", "content": _json("ChangePage")},
                        **ERRORS,
                    },
                }
            },
            **_order_paths(),
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": ERRORS["401"],
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: the database answers; never needs the token",
                    "security": [{}],
                    "responses": {
                        "200": {"description": "ready", "content": _json("Health")},
                        "503": {
                            "description": "the database is unavailable",
                            "content": _json("Error"),
                        },
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness; never needs the token",
                    "security": [{}],
                    "responses": {
                        "200": {"description": "alive", "content": _json("Health")},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition",
                    "responses": {
                        "200": {
                            "description": "metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": ERRORS["401"],
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _object({"error": {"type": "string"}, "message": {"type": "string"}}),
                "Health": _object({"status": {"type": "string", "const": "ok"}}),
                "Product": _object(product),
                "ProductDetail": _object(detail),
                "ProductPage": _object(
                    {
                        "products": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Product"},
                        },
                        "next_cursor": {"type": ["string", "null"]},
                    }
                ),
                "TimedSession": _object(
                    {
                        "start_time": {"type": "string"},
                        "end_time": {"type": "string"},
                        "seats_code": {"type": "string"},
                        "seats_num": {"type": "integer"},
                    }
                ),
                "CalendarDay": _object(
                    {
                        "date": DATE,
                        "price": MONEY,
                        "sale_price": MONEY,
                        "market_price": MONEY,
                        "stock": {
                            "type": ["integer", "null"],
                            "description": "null when unlimited",
                        },
                        "booking_days": {"type": "integer"},
                        "bookable_until": {
                            "anyOf": [TIMESTAMP, {"type": "null"}],
                            "description": (
                                "the last moment (Asia/Shanghai, with its offset) this visit day "
                                "can be booked: the day minus booking_days at the product's "
                                "booking_time, else at the end of that day; null when it cannot "
                                "be booked at all (a product sold by session, no session that day)"
                            ),
                        },
                        "sessions": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TimedSession"},
                        },
                    }
                ),
                "Calendar": _object(
                    {
                        "product_id": {"type": "integer"},
                        "from": DATE,
                        "to": DATE,
                        "days": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/CalendarDay"},
                        },
                    }
                ),
                "Change": _object(
                    {
                        "seq": {"type": "integer"},
                        "product_id": {"type": "integer"},
                        "kind": {
                            "type": "string",
                            "description": "created, updated, status, prices, deauthorized, reauthorized",
                        },
                        "version": {"type": ["integer", "null"]},
                        "created_at": TIMESTAMP,
                        "detail": {"type": ["object", "null"]},
                    }
                ),
                **_order_schemas(),
                "ChangePage": _object(
                    {
                        "changes": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Change"},
                        },
                        "next_after": {"type": "integer"},
                        "has_more": {"type": "boolean"},
                    }
                ),
            },
        },
    }


ORIGIN = {
    "name": "origin_order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
ORDER_STATUSES = [
    "unknown",
    "rejected",
    "awaiting_payment",
    "paid",
    "awaiting_ticket",
    "issued",
    "ticket_failed",
    "payment_failed",
    "cancelled",
    "redeemed",
    "refund_pending",
    "refunded",
]


def _outcomes(done: str = "200") -> dict[str, Any]:
    return {
        done: {"description": "done", "content": _json("OrderOutcome")},
        "202": {
            "description": "outcome unknown: the answer was lost; reconciled, never sent again",
            "content": _json("OrderOutcome"),
        },
        "422": {
            "description": "refused: a check or the supplier said no (rule names it)",
            "content": _json("OrderOutcome"),
        },
        "400": ERRORS["400"],
        "401": ERRORS["401"],
        "503": {
            "description": "the database is unavailable, or this API has no supplier settings",
            "content": _json("Error"),
        },
    }


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": _json(ref)}


def _order_paths() -> dict[str, Any]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    return {
        "/orders": {
            "get": {
                "summary": "Orders placed here, oldest first, keyset paginated",
                "parameters": [
                    _query("status", {"type": "string", "enum": ORDER_STATUSES}, "only these"),
                    _query(
                        "updated_since",
                        TIMESTAMP,
                        "only orders moved at or after this time (ISO 8601 with offset)",
                    ),
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                    _query("limit", limit, "page size"),
                ],
                "responses": {
                    "200": {"description": "a page of orders", "content": _json("OrderPage")},
                    **{k: ERRORS[k] for k in ("400", "401", "503")},
                },
            },
            "post": {
                "summary": "Check, verify and create an order (Create is sent once)",
                "requestBody": _body("NewOrder"),
                "responses": _outcomes("201"),
            },
        },
        "/orders/{origin_order_id}": {
            "get": {
                "summary": "One order: status, quantities, masked vouchers, history",
                "parameters": [ORIGIN],
                "responses": {
                    "200": {"description": "the order", "content": _json("Order")},
                    "404": {"description": "no such order", "content": _json("Error")},
                    **{k: ERRORS[k] for k in ("400", "401", "503")},
                },
            }
        },
        "/orders/{origin_order_id}/pay": {
            "post": {
                "summary": "Pay once; never for an unknown or paid order",
                "parameters": [ORIGIN],
                "responses": _outcomes(),
            }
        },
        "/orders/{origin_order_id}/cancel": {
            "post": {
                "summary": "Cancel an order awaiting payment",
                "parameters": [ORIGIN],
                "responses": _outcomes(),
            }
        },
        "/orders/{origin_order_id}/refund": {
            "post": {
                "summary": "Apply for a refund of some tickets (a new, unique RefundId)",
                "parameters": [ORIGIN],
                "requestBody": _body("RefundRequest"),
                "responses": _outcomes(),
            }
        },
    }


def _order_schemas() -> dict[str, Any]:
    holder = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "mobile": {"type": "string", "minLength": 1, "maxLength": 32},
            "id_number": {"type": ["string", "null"], "maxLength": 32},
        },
        "required": ["name", "mobile"],
        "additionalProperties": False,
    }
    order = {
        "type": "object",
        "description": "personal data masked; money as decimal strings",
        "properties": {
            "origin_order_id": {"type": "string"},
            "order_id": {"type": ["integer", "null"]},
            "status": {"type": "string", "enum": ORDER_STATUSES},
            "quantity": {"type": ["integer", "null"]},
            "redeemed_quantity": {"type": "integer"},
            "refunded_quantity": {"type": "integer"},
            "product_id": {"type": ["integer", "null"]},
            "visit_date": {"anyOf": [DATE, {"type": "null"}]},
            "unit_price": _nullable(MONEY),
            "vouchers": {"type": "array", "items": {"type": "object"}},
            "history": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["origin_order_id", "order_id", "status", "quantity"],
    }
    return {
        "NewOrder": {
            "type": "object",
            "properties": {
                "product_id": ID,
                "visit_date": DATE,
                "quantity": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "contact": holder,
                "visitors": {"type": "array", "items": holder},
                "session_code": {"type": ["string", "null"]},
                "origin_order_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64},
                "remark": {"type": ["string", "null"], "maxLength": 500},
            },
            "required": ["product_id", "visit_date", "quantity", "contact"],
            "additionalProperties": False,
        },
        "RefundRequest": {
            "type": "object",
            "properties": {
                "count": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "vouchers": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["count"],
            "additionalProperties": False,
        },
        "Order": order,
        "OrderPage": _object(
            {
                "orders": {"type": "array", "items": {"type": "object"}},
                "next_cursor": {"type": ["string", "null"]},
            }
        ),
        "OrderOutcome": {
            "type": "object",
            "properties": {
                "result": {"type": "string", "enum": ["done", "refused", "unknown"]},
                "message": {"type": "string"},
                "rule": {"type": "string"},
                "order": {"anyOf": [{"$ref": "#/components/schemas/Order"}, {"type": "null"}]},
            },
            "required": ["result", "message"],
        },
    }


@bp.get("/openapi.json")
def serve() -> Response:
    return jsonify(document())
