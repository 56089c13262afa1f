"""Shared personas and clients. Every test that needs the engine uses the real one (see scripts/setup.sh)."""

from __future__ import annotations

import os
import shutil

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("mallory", "mallory@example.com", PASSWORD)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def owner_api(owner) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def pytest_sessionfinish(session, exitstatus):
    """Remove the temporary data folder tests/settings.py made for this run."""
    folder = os.environ.get("CONSOLE_TEST_DATA_DIR", "")
    if os.path.basename(folder).startswith("console-test-"):
        shutil.rmtree(folder, ignore_errors=True)
