"""The sync use cases: pure planners and the thin shells that gather and write around them.

``plan`` (products: new, changed, missing, drifted), ``price_plan`` (prices: older fetch,
unchanged, window moved, replace), ``calendar`` (rules resolved into days), ``freshness`` (change
rates from refresh history, staleness weight) and ``refresh_plan`` (refresh intervals for a
request budget; not wired in yet) are pure; ``products``,
``prices`` and ``rolling`` read the database, ask a planner and apply its answer. No Celery or
Flask here: tasks, commands and routes call these functions.
"""
