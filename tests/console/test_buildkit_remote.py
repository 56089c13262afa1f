"""BuildKit builds on engines reached over TLS and over ssh (tests/fixtures/fleet.py: engines of their own, in
network namespaces, started for this module only and torn down at its end)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from console.engine import Engine, EngineError, EngineUnavailable, SSHMaterial
from console.engine.buildkit import BuildkitRequest, BuildkitStream, VertexLog, buildkit_cli, start_build
from tests.builds.archive_factory import tar_bytes
from tests.fixtures.fleet import Fleet, FleetHost, ssh_key_pair, start_fleet, start_ssh_server

pytestmark = pytest.mark.engine

BASE = "busybox:1.35.0"


@pytest.fixture(scope="module")
def remote() -> Iterator[Fleet]:
    fleet = start_fleet([{"label": "plain"}, {"label": "tls", "tls": True}])
    try:
        # No registry here: each engine gets the base image from the main engine.
        for host in fleet:
            saved = subprocess.run(["/usr/bin/docker", "save", BASE], capture_output=True, check=True).stdout
            subprocess.run(["/usr/bin/docker", "-H", host.socket_url, "load"], input=saved, capture_output=True,
                           check=True)
        yield fleet
    finally:
        fleet.teardown()


@pytest.fixture(scope="module")
def ssh_server(remote):
    server = start_ssh_server(remote.plain)
    try:
        yield server
    finally:
        server.stop()


def build_on(engine: Engine, host: FleetHost, secret: str = "") -> tuple[object, list[str]]:
    dockerfile = (f"FROM {BASE}\nRUN --mount=type=secret,id=token sh -c 'echo remote-$(wc -c < /run/secrets/token)'\n")
    request = BuildkitRequest(context=[tar_bytes([("Dockerfile", dockerfile.encode())])], no_cache=True,
                              tags=["console-test/buildkit-remote:1"], secrets={"token": secret or "abc"})
    stream = start_build(engine, request)
    lines = [event.text for event in stream if isinstance(event, VertexLog)]
    return stream, lines


def on_host(host: FleetHost, image_id: str) -> str:
    return subprocess.run(["/usr/bin/docker", "-H", host.socket_url, "image", "inspect", "-f", "{{.Id}}", image_id],
                          capture_output=True, text=True).stdout.strip()


def test_a_build_over_tls_runs_on_that_engine(remote):
    host = remote.tls
    with Engine(host.url, tls=host.tls) as engine:
        stream, lines = build_on(engine, host)
    assert stream.returncode == 0, stream.error
    assert "remote-3" in lines
    assert on_host(host, stream.image_id) == stream.image_id
    # Not on the main engine.
    assert subprocess.run(["/usr/bin/docker", "image", "inspect", stream.image_id], capture_output=True).returncode


def test_a_build_over_ssh_uses_the_hosts_key_and_recorded_host_key(remote, ssh_server):
    host = remote.plain
    material = SSHMaterial(ssh_server.client_key, ssh_server.host_key)
    with Engine(ssh_server.url, ssh=material) as engine:
        stream, lines = build_on(engine, host, secret="12345")
    assert stream.returncode == 0, stream.error
    assert "remote-5" in lines
    assert on_host(host, stream.image_id) == stream.image_id


def test_an_ssh_host_presenting_another_key_is_refused(remote, ssh_server):
    _, other_public = ssh_key_pair()
    material = SSHMaterial(ssh_server.client_key, other_public)
    # The SDK checks the key first (the engine's ping): the CLI never runs.
    with Engine(ssh_server.url, ssh=material) as engine, pytest.raises(EngineError, match="host key"):
        build_on(engine, remote.plain)


def test_the_clis_own_ssh_refuses_another_host_key(remote, ssh_server):
    _, other_public = ssh_key_pair()
    material = SSHMaterial(ssh_server.client_key, other_public)
    dockerfile = f"FROM {BASE}\nRUN true\n"
    request = BuildkitRequest(context=[tar_bytes([("Dockerfile", dockerfile.encode())])])
    # Past the SDK's check, straight to the CLI: its ssh, with our config, refuses too.
    with Engine(ssh_server.url, ssh=material) as engine:
        stream = BuildkitStream(engine, request, buildkit_cli())
        with pytest.raises(EngineUnavailable, match="its ssh host key is not the one recorded for it"):
            list(stream)
    assert stream.returncode != 0 and stream.image_id == ""
    assert stream.error == (f"Building: the BuildKit client could not reach the Docker Engine at {ssh_server.url} "
                            "(its ssh host key is not the one recorded for it).")
