"""`make run`'s server (scripts/run.sh) as a newcomer meets it: gunicorn with DEBUG off on the embedded default
(SQLite and the filesystem broker in a fresh data folder), whitenoise's hashed static files, cookies that are not
Secure over plain http on 127.0.0.1, sign-up through the form, the console's own 404 and the API's JSON 404; stopped
as Ctrl-C stops it, by the process group it was started in."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

# The worker run.sh starts with the server: a real one, on the filesystem broker of the data folder.
pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def embedded_env(data: Path, port: int) -> dict[str, str]:
    """What a newcomer's shell has: none of the test run's database, broker, secrets or security settings."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("SECURE_", "LOGIN_", "CONSOLE_", "SESSION_", "CSRF_", "STATIC"))
            and k not in {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "DATABASE_URL", "CELERY_BROKER_URL",
                          "CACHE_URL", "DJANGO_SETTINGS_MODULE", "REGISTRY_DIR"}}
    return {**keep, "CONSOLE_DATA_DIR": str(data), "PORT": str(port),
            "REGISTRY_ADDRESS": f"127.0.0.1:{free_port()}", "WEB_CONCURRENCY": "1"}


def wait_for(url: str, server: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            requests.get(url, timeout=5)
            return
        # A server still starting on a loaded machine may accept and then answer slowly.
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_run_serves_with_gunicorn_and_debug_off(tmp_path):
    data, port = tmp_path / "data", free_port()
    env = embedded_env(data, port)
    # What scripts/setup.sh does before run.sh (the rest of it, engine and packages, is the machine's already).
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        server = subprocess.Popen(["scripts/run.sh"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", server, log)
        assert "gunicorn, DEBUG off" in log.read_text()
        # The registry runs under its supervisor (manage.py registry_serve), which garbage collection asks for a
        # read-only window (registry/maintenance.py).
        # (It may answer after the web server: run.sh starts them side by side.)
        state_file, deadline = data / "registry" / "run" / "state.json", time.monotonic() + 90
        while not state_file.exists() and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            time.sleep(0.2)
        state = json.loads(state_file.read_text())
        assert state["mode"] == "readwrite" and state["pid"] > 0, log.read_text()

        browser = requests.Session()
        signup = browser.get(f"{base}/accounts/signup/", timeout=10)
        assert signup.status_code == 200
        cookie = signup.headers["Set-Cookie"].lower()
        assert "csrftoken=" in cookie and "secure" not in cookie
        stylesheet = re.search(r"/static/css/console\.[0-9a-f]{12}\.css", signup.text)
        assert stylesheet, signup.text[:1000]
        css = browser.get(base + stylesheet.group(0), timeout=10)
        assert css.status_code == 200 and "max-age=315360000" in css.headers["Cache-Control"]

        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', signup.text).group(1)
        signed_up = browser.post(f"{base}/accounts/signup/", timeout=30, allow_redirects=False,
                                 headers={"Referer": f"{base}/accounts/signup/"},
                                 data={"csrfmiddlewaretoken": token, "username": "newcomer",
                                       "email": "newcomer@example.com", "password1": "Correct-Horse-42x",
                                       "password2": "Correct-Horse-42x"})
        assert signed_up.status_code == 302, signed_up.text[:2000]
        assert "secure" not in signed_up.headers["Set-Cookie"].lower()
        dashboard = browser.get(base + "/", timeout=30)
        assert dashboard.status_code == 200 and 'id="first-steps"' in dashboard.text
        # The key generated into the data folder signs the session (no SECRET_KEY was given).
        assert (data / "secret_key").stat().st_mode & 0o077 == 0

        missing = browser.get(f"{base}/no-such-page/", timeout=10)
        assert missing.status_code == 404
        assert 'id="not-found"' in missing.text and "Log out" in missing.text and "URLconf" not in missing.text
        api_missing = requests.get(f"{base}/api/v1/no-such-thing/", timeout=10)
        assert api_missing.status_code == 404 and api_missing.json() == {"detail": "Not found."}
    finally:
        # Ctrl-C reaches the whole process group: gunicorn, the worker, the registry and run.sh itself.
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=90)
        finally:
            deadline = time.monotonic() + 60
            while group_alive(server.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if group_alive(server.pid):
                os.killpg(server.pid, signal.SIGKILL)
                raise AssertionError(f"make run's processes outlived Ctrl-C:\n{log.read_text()}")
