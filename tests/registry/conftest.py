"""Registries for the registry tests: real Distribution servers from tests/fixtures/registry.py."""

from tests.fixtures.registry import (  # noqa: F401  (pytest fixtures)
    console_registry,
    docker_cli,
    gc_registry,
    htpasswd_registry,
    open_registry,
    supervised_registry,
    token_registry,
)
from tests.registry.helpers import all_logs, unique_image  # noqa: F401  (pytest fixtures)
