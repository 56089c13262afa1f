"""Fixtures of the console's own tests."""

from tests.fixtures.make_run import start_console  # noqa: F401  (consoles started as `make run` starts them)
