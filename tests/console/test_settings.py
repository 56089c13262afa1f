"""Settings load in a fresh interpreter, so each case sees only its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    environment.update({"CONSOLE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "console.settings", **env})
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)


def test_it_defaults_to_sqlite_and_generates_its_secrets(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]
    assert (tmp_path / "secret_key").exists()
    assert (tmp_path / "encryption_key").exists()


def test_it_reads_postgres_from_database_url(tmp_path):
    result = load_settings(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/console", DEBUG="false",
                           SECRET_KEY="a production secret key of at least 32 characters")
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL is malformed"),
        ({"CONSOLE_ENCRYPTION_KEYS": "short"}, "CONSOLE_ENCRYPTION_KEYS holds a key"),
        ({"DOCKER_TIMEOUT": "soon"}, "DOCKER_TIMEOUT='soon' is not a whole number"),
        ({"SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE='/nonexistent/secret' cannot be read"),
    ],
)
def test_it_fails_loudly_on_malformed_values(tmp_path, env, message):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
