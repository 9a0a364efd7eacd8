"""Helpers shared by the tests, imported one way: ``from tests.support.<module> import ...``.

Fixtures stay in the ``conftest.py`` files; everything a test module imports lives here.
"""
