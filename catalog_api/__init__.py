"""The catalog read API: a Flask app for the distributor's own systems (read-only but orders).

Served by ``gunicorn 'catalog_api.app:create_app()'`` (settings from the environment) or
``catalog-sync api --port P`` locally. JSON with snake_case keys; money is a decimal string with
two places; timestamps are UTC ISO 8601 with ``Z``; calendar dates are Asia/Shanghai days.

Routes (``/openapi.json`` is the full contract, checked against real responses by the tests):

* ``GET /catalog/products``: ``status`` (on_shelf|off_shelf), ``scenic_id``, ``authorized``
  (true by default, false, any), ``updated_since``, ``limit`` (default 100, max 1000),
  ``cursor``. Keyset pagination on ``product_id``: a row inserted or updated between two pages
  never moves a page boundary, so following ``next_cursor`` (null at the end) neither skips nor
  repeats a product that exists throughout.
* ``GET /catalog/products/{id}``: every contract field, version, authorized, updated_at,
  prices_refreshed_at, and ``lowest_sale_price`` over today..today+price_window_days.
* ``GET /catalog/products/{id}/calendar?from&to``: the priced days in the inclusive range (a day
  without a resolved price is not for sale and is left out), each with its sessions. Default
  today..today+price_window_days; at most 366 days.
* ``GET /catalog/changes?after&limit``: the change feed; pass ``next_after`` back as ``after``.
  On PostgreSQL it never passes a seq that a transaction still in flight may commit later
  (``queries.changes_after`` explains how: consecutive seqs are served at once, a hole is
  passed only when no writer holds a lock on ``changes`` or after it persisted a settle delay).
* ``GET /openapi.json``, ``GET /healthz`` (never needs the token), ``GET /metrics``.
* ``/orders`` (``catalog_api.orders``): place, pay, cancel, refund, show and list orders
  through the supplier; the one part that writes, and only when the process has supplier
  settings (else 503).

Product and calendar replies carry a strong ETag over the body and honour ``If-None-Match``.
With ``CATALOG_API_TOKEN`` set, every route but ``/healthz`` needs ``Authorization: Bearer``.
Malformed parameters get 400 ``{"error", "message"}``; an unknown product 404.
"""
