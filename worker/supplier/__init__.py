"""The adapter to the supplier's API, and nothing else.

``client`` (typed calls, paging, retries), ``port`` (the ``Supplier`` Protocol the sync depends
on, and ``Usage``), ``envelope`` (answers mapped to the error tree, page parsing), ``payloads``
and ``fields`` (validated answer and request models, their bounded types), ``notices`` (the
callback notice models), ``signing`` (request and callback signatures), ``errors`` (the
exception tree), ``ratelimit`` (the request budget), ``transient`` (which refusals mean
"busy"), ``contract`` (time zone, status numbers, case-insensitive keys). No database session,
Celery, Flask or settings object is used here.
"""
