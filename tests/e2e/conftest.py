"""The browser fixtures (browser, page, screenshot) live in tests/conftest.py: one Chromium serves the run."""
