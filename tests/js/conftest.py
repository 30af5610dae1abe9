"""Chromium fixtures for tests/js/test_browser.py (tests/browser_support.py)."""

from tests.browser_support import browser, page  # noqa: F401 - pytest fixtures, used by name
