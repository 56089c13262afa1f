"""The production deployment: gunicorn with deploy/gunicorn.conf.py, DEBUG off, static files from whitenoise,
PostgreSQL and Redis from the environment, logs on standard output; and no start without a real SECRET_KEY."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.fixtures.worker import database_url

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("SECURE_", "LOGIN_", "CONSOLE_", "BUILD_")) and k not in {"SECRET_KEY", "DEBUG"}}
    return {**keep, "DJANGO_SETTINGS_MODULE": "console.settings", "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CONSOLE_DATA_DIR": str(tmp_path / "data"), "STATIC_ROOT": str(tmp_path / "static"),
            "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", **extra}


def test_it_serves_the_console_under_gunicorn_with_debug_off(tmp_path):
    port = free_port()
    env = production_env(tmp_path, port)
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr
    output = tmp_path / "gunicorn.log"
    with output.open("wb") as log:
        server = subprocess.Popen([GUNICORN, "-c", "deploy/gunicorn.conf.py", "console.wsgi"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, health = time.monotonic() + 30, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert health is not None, output.read_text()
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["database"] == {"ok": True, "detail": "postgresql"}
        assert body["broker"]["ok"] and body["broker"]["detail"] == "redis"

        login = requests.get(f"{base}/accounts/login/", timeout=5)
        assert login.status_code == 200
        # Secure cookies without DEBUG; hashed static names from the manifest, served by whitenoise for a year.
        assert "secure" in login.headers["Set-Cookie"].lower()
        stylesheet = re.search(r'/static/css/console\.[0-9a-f]{12}\.css', login.text)
        assert stylesheet, login.text[:2000]
        css = requests.get(base + stylesheet.group(0), timeout=5, headers={"Accept-Encoding": "gzip"})
        assert css.status_code == 200 and "max-age=315360000" in css.headers["Cache-Control"]
        assert css.headers.get("Content-Encoding") == "gzip"
        # DEBUG is off: an unknown page is a plain 404, not Django's technical page; an unknown host is refused.
        missing = requests.get(f"{base}/no-such-page/", timeout=5)
        assert missing.status_code == 404 and "URLconf" not in missing.text
        assert requests.get(f"{base}/healthz", headers={"Host": "evil.example"}, timeout=5).status_code == 400
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    # Access log and application log on standard output, for the journal.
    logged = output.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in logged
    assert "Invalid HTTP_HOST header" in logged


@pytest.mark.parametrize("key", ["", "short", "django-insecure-" + "x" * 40])
def test_it_refuses_to_start_without_a_real_secret_key(tmp_path, key):
    env = production_env(tmp_path, free_port(), SECRET_KEY=key)
    result = subprocess.run([GUNICORN, "-c", "deploy/gunicorn.conf.py", "console.wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stdout + result.stderr


def settings_of(tmp_path, code: str, **env) -> subprocess.CompletedProcess:
    environment = {**production_env(tmp_path, 8000), "DEBUG": "true", **env}
    program = ("import django; django.setup(); from django.conf import settings; "
               f"from builds.sources.sourcestore import source_storage; print({code})")
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


def test_sources_may_live_in_another_storage_backend_with_its_own_options(tmp_path):
    default = settings_of(tmp_path, "settings.STORAGES['sources']")
    assert "FileSystemStorage" in default.stdout and "'file_permissions_mode': 384" in default.stdout
    other = settings_of(tmp_path, "settings.STORAGES['sources']",
                        CONSOLE_SOURCE_STORAGE_BACKEND="django.core.files.storage.InMemoryStorage",
                        CONSOLE_SOURCE_STORAGE_OPTIONS='{"base_url": "/sources/"}')
    assert other.stdout.strip() == ("{'BACKEND': 'django.core.files.storage.InMemoryStorage', "
                                    "'OPTIONS': {'base_url': '/sources/'}}"), other.stderr
    # The console's source store gets that backend, configured with those options.
    usable = settings_of(tmp_path, "type(source_storage()).__name__, source_storage().base_url",
                         CONSOLE_SOURCE_STORAGE_BACKEND="django.core.files.storage.InMemoryStorage",
                         CONSOLE_SOURCE_STORAGE_OPTIONS='{"base_url": "/sources/"}')
    assert usable.stdout.strip() == "InMemoryStorage /sources/", usable.stderr
    broken = settings_of(tmp_path, "1", CONSOLE_SOURCE_STORAGE_BACKEND="storages.backends.s3.S3Storage",
                         CONSOLE_SOURCE_STORAGE_OPTIONS="[1, 2")
    assert broken.returncode != 0 and "CONSOLE_SOURCE_STORAGE_OPTIONS must be a JSON object" in broken.stderr
