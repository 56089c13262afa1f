"""The engine wrapper's containers on the real engine: a published port works for any image, EXPOSE or not."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

from console.engine import Engine
from console.engine.containers import ContainerSpec, create_container

# Needs the real engine (left out of `make test-fast`).
pytestmark = pytest.mark.engine

# An app that listens on 8080 without saying so (no EXPOSE).
DOCKERFILE = ('FROM busybox:1.35.0\n'
              'CMD ["sh", "-c", "mkdir -p /w && echo published > /w/index.html && exec httpd -f -p 8080 -h /w"]\n')


@pytest.fixture
def unexposed_image(tmp_path):
    tag = f"console-test/unexposed:{uuid.uuid4().hex[:8]}"
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    subprocess.run(["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True,
                   env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
    image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True,
                              text=True, check=True).stdout.strip()
    yield tag
    subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_port_is_published_for_an_image_that_does_not_expose_it(unexposed_image):
    port = free_port()
    spec = ContainerSpec(name=f"console-test-ports-{uuid.uuid4().hex[:8]}", image=unexposed_image,
                         ports={"8080/tcp": port})
    with Engine.for_builds() as engine:
        container = create_container(engine, spec)
        try:
            assert list(engine.api.inspect_container(container)["Config"]["ExposedPorts"]) == ["8080/tcp"]
            engine.api.start(container)
            assert get(f"http://127.0.0.1:{port}/") == "published\n"
        finally:
            engine.api.remove_container(container, force=True)


def get(url: str, attempts: int = 50) -> str:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")
