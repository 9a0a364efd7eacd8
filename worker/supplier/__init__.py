"""The adapter to the supplier's API, and nothing else.

``client`` (typed calls, paging, retries), ``signing`` (request and callback signatures),
``payloads`` (the validated answer models), ``notices`` (the callback notice models),
``errors`` (the exception tree), ``ratelimit`` (the request budget), ``transient`` (which
refusals mean "busy"), ``port`` (the ``Supplier`` Protocol the sync and the callbacks use).
No database, Celery, Flask or settings object is imported here.
"""
