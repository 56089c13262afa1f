"""The console's own registry as the console writes it (registry/server.py: token auth, notifications), a real
Distribution trusting the live server, and a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.fixtures.registry import (  # noqa: F401  (pytest fixtures)
    TOKEN_ISSUER,
    TOKEN_SERVICE,
    DistributionServer,
    docker_cli,
    free_port,
)


@pytest.fixture
def written_registry(live_server, settings) -> Iterator[DistributionServer]:
    """`manage.py registry_config`'s config.yml, served by docker-registry: its notifications reach the live
    server. The settings point the console at it as its own registry."""
    from registry.server import write_config

    with tempfile.TemporaryDirectory(prefix="registry-written-") as directory:
        path = Path(directory)
        settings.REGISTRY_DIR = path
        settings.REGISTRY_ADDRESS = f"127.0.0.1:{free_port()}"
        settings.REGISTRY_TOKEN_REALM = f"{live_server.url}/registry/token/"
        settings.REGISTRY_SERVICE = TOKEN_SERVICE
        settings.REGISTRY_ISSUER = TOKEN_ISSUER
        config, _ = write_config(path)
        with (path / "registry.log").open("wb") as log:
            process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        server = DistributionServer(path, settings.REGISTRY_ADDRESS, process)
        try:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, f"docker-registry refused the config:\n{server.log()}"
                try:
                    requests.get(f"{server.url}/v2/", timeout=1)
                    break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline, server.log()
                    time.sleep(0.05)
            yield server
        finally:
            server.stop()


class Receiver:
    """What the webhook receiver saw: each request's headers and raw body; `answers` are its status codes in turn
    (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        self.url = ""

    def wait_for(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.1)
        raise AssertionError(f"the receiver saw {len(self.requests)} requests, not {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    seen = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with seen.lock:
                seen.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                      "at": time.monotonic()})
                status = seen.answers.pop(0) if seen.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    seen.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield seen
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker sending the deliveries, with a one-second backoff base."""
    from tests.fixtures.worker import routed_to, running_worker

    env = {"WEBHOOK_RETRY_BASE_SECONDS": "1", "WEBHOOK_MAX_ATTEMPTS": "3", "WEBHOOK_TIMEOUT_SECONDS": "5"}
    with running_worker(tmp_path_factory.mktemp("worker"), queues=("celery",), env=env) as running, \
            routed_to(running):
        yield running
