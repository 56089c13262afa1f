"""Files at rest are the owner's alone: the data folder 0700; the SQLite database, secrets and logs 0600.

Run for real: the console's settings loaded by `manage.py migrate` in a fresh data folder (a subprocess, the
embedded defaults: SQLite, generated secrets), and the scripts' helpers in bash."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from console.env import generated_secret, private_dir, private_file

ROOT = Path(__file__).resolve().parents[2]
# What the settings generate or create in the data folder, and must keep private.
PRIVATE_FILES = ["console.sqlite3", "secret_key", "encryption_key"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_console(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECRET_KEY", "CONSOLE_ENCRYPTION_KEYS",
                          "DJANGO_SETTINGS_MODULE", "CONSOLE_TEST_DATA_DIR", "REGISTRY_DIR", "CONSOLE_SOURCES_DIR",
                          "STATIC_ROOT"}}
    env["CONSOLE_DATA_DIR"] = str(data_dir)
    # The umask a careless service manager might give: the modes must not depend on it.
    return subprocess.run(["bash", "-c", 'umask 022 && exec "$0" manage.py "$@"', sys.executable, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A data folder `manage.py migrate` made from nothing (one run for the module: it takes seconds)."""
    data_dir = tmp_path_factory.mktemp("at-rest") / "var"
    result = run_console(data_dir, "migrate", "--no-input", "-v0")
    assert result.returncode == 0, result.stderr[-2000:]
    return data_dir


def test_the_data_folder_is_0700(migrated):
    assert mode(migrated) == 0o700


@pytest.mark.parametrize("name", PRIVATE_FILES)
def test_the_database_and_generated_secrets_are_0600(migrated, name):
    path = migrated / name
    assert path.is_file()
    assert mode(path) == 0o600


def test_the_database_is_a_real_migrated_database(migrated):
    import sqlite3

    with sqlite3.connect(migrated / "console.sqlite3") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'index'")}
    # Migration accounts 0002 built its unique index on lower(username) on SQLite too.
    assert "accounts_username_lower_unique" in tables


def test_no_file_in_the_data_folder_is_readable_by_others(migrated):
    for path in migrated.rglob("*"):
        if path.is_file():
            assert mode(path) & 0o077 == 0 or mode(path.parent) & 0o077 == 0, path


def test_an_older_data_folder_is_tightened_at_start(tmp_path):
    data_dir = tmp_path / "old"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    for name in PRIVATE_FILES:
        (data_dir / name).write_text("")
        os.chmod(data_dir / name, 0o644)
    # Values an older version generated, readable by everyone.
    (data_dir / "secret_key").write_text("x" * 50 + "\n")
    (data_dir / "encryption_key").write_text("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n")
    result = run_console(data_dir, "check")
    assert result.returncode == 0, result.stderr[-2000:]
    assert mode(data_dir) == 0o700
    for name in PRIVATE_FILES:
        assert mode(data_dir / name) == 0o600, name
    assert (data_dir / "secret_key").read_text() == "x" * 50 + "\n"


def test_the_helpers_make_private_folders_and_files(tmp_path):
    old = os.umask(0o022)
    try:
        folder = private_dir(tmp_path / "a" / "b")
        secret = generated_secret(folder, "key", lambda: "value")
        database = private_file(folder / "db.sqlite3")
    finally:
        os.umask(old)
    assert mode(folder) == 0o700
    assert mode(secret_path := folder / "key") == 0o600 and secret == "value" == secret_path.read_text().strip()
    assert mode(database) == 0o600 and database.read_bytes() == b""
    # Made once: the second call neither rewrites the value nor loosens the mode.
    assert generated_secret(folder, "key", lambda: "other") == "value"


def test_the_scripts_make_the_log_folder_and_logs_private(tmp_path):
    data_dir = tmp_path / "var"
    (data_dir / "log").mkdir(parents=True)
    os.chmod(data_dir, 0o755)
    old_log = data_dir / "log" / "worker.log"
    old_log.write_text("from an older version\n")
    os.chmod(old_log, 0o644)
    script = 'source scripts/lib.sh && private_data_dir && private_log "$data_dir/log/registry.log"'
    result = subprocess.run(["bash", "-c", f"umask 022; {script}"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "CONSOLE_DATA_DIR": str(data_dir)}, timeout=30)
    assert result.returncode == 0, result.stderr
    assert mode(data_dir) == 0o700 and mode(data_dir / "log") == 0o700
    assert mode(old_log) == 0o600 and mode(data_dir / "log" / "registry.log") == 0o600
    assert old_log.read_text() == "from an older version\n"


def test_logging_writes_no_files():
    """Logs go to standard output (the process supervisor's journal): no handler writes a file that would need
    its own mode."""
    from django.conf import settings

    for handler in settings.LOGGING["handlers"].values():
        assert "filename" not in handler and "File" not in handler["class"]
