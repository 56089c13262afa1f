"""Fixtures of the fleet tests: the fleet of real engines, small images built on the main engine, hosts."""

from __future__ import annotations

import io
import os
import urllib.request
from pathlib import Path

import pytest

from console.engine import Engine
from fleet.models import Host
from tests.fixtures.fleet import fleet  # noqa: F401  (re-exported: the session's engines)

ROOT = Path(__file__).resolve().parents[2]
# Test sessions on one machine share the main engine: each process tags the images with its own id, so that a
# session that ends (and removes its tags) never takes away the images another one is using.
_SESSION = f"1-{os.getpid()}"
HELLO = f"console-test/fleet-hello:{_SESSION}"
BROKEN = f"console-test/fleet-broken:{_SESSION}"
HEALTHY = f"console-test/fleet-healthy:{_SESSION}"
UNHEALTHY = f"console-test/fleet-unhealthy:{_SESSION}"
# Runs and stays up, but listens on no port: a container that runs is not yet an app that answers.
SILENT = f"console-test/fleet-silent:{_SESSION}"


def _build(engine: Engine, tag: str, path: str | None = None, dockerfile: str | None = None) -> str:
    with engine.errors(f"Building {tag}"):
        stream = engine.api.build(
            path=path, fileobj=io.BytesIO(dockerfile.encode()) if dockerfile else None, tag=tag, rm=True,
            decode=True,
        )
        for event in stream:
            if "error" in event:
                raise AssertionError(f"building {tag} failed: {event['error']}")
        return engine.api.inspect_image(tag)["Id"]


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """examples/hello and four variants, built FROM busybox:1.35.0 on the main engine; untagged at the end."""
    with Engine.for_builds() as engine:
        built = {HELLO: _build(engine, HELLO, path=str(ROOT / "examples" / "hello"))}
        built[BROKEN] = _build(
            engine, BROKEN, dockerfile='FROM busybox:1.35.0\nCMD ["sh", "-c", "echo broken on purpose; exit 3"]\n'
        )
        built[HEALTHY] = _build(
            engine, HEALTHY,
            dockerfile=f"FROM {HELLO}\nHEALTHCHECK --interval=1s --timeout=2s --retries=3 "
                       "CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1\n",
        )
        built[SILENT] = _build(
            engine, SILENT, dockerfile='FROM busybox:1.35.0\nEXPOSE 8080\nCMD ["sleep", "600"]\n'
        )
        built[UNHEALTHY] = _build(
            engine, UNHEALTHY,
            dockerfile=f"FROM {HELLO}\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD echo sick; exit 1\n",
        )
    yield built
    with Engine.for_builds() as engine, engine.errors("Cleaning up"):
        for tag in reversed(list(built)):
            # Only this session's tag goes: an image another session tagged too stays for it.
            if engine.image_exists(tag):
                engine.api.remove_image(tag, force=True)


def register(owner, fleet_host, name: str | None = None, **fields) -> Host:  # noqa: F811
    tls = fleet_host.tls
    return Host.objects.create(
        owner=owner, name=name or fleet_host.label, url=fleet_host.url,
        tls_ca_cert=tls.ca_cert if tls else "", tls_client_cert=tls.client_cert if tls else "",
        tls_client_key=tls.client_key if tls else "", **fields,
    )


@pytest.fixture
def hosts(owner, fleet) -> list[Host]:  # noqa: F811
    """The three engines of the fleet, registered for the owner (labels env=test, and tier=<label>)."""
    return [register(owner, host, labels={"env": "test", "tier": host.label}) for host in fleet]


def http_get(url: str, timeout: float = 5) -> str:
    """GET a deployed app (only ever an address of our own fleet)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return response.read().decode()


def remove_app(fleet, name: str) -> None:  # noqa: F811
    """Remove the containers of one app from every engine of the fleet, so that tests do not see each other's."""
    for fleet_host in fleet:
        if not fleet_host.pid:
            continue
        with fleet_host.engine() as engine, engine.errors("Cleaning up"):
            for container in engine.api.containers(all=True, filters={"label": f"console.deployment.name={name}"}):
                engine.api.remove_container(container["Id"], force=True)


@pytest.fixture
def queued(monkeypatch):
    """The deployments handed to the worker, by id: none runs (for tests of what is recorded and refused)."""
    sent = []
    monkeypatch.setattr("fleet.tasks.run_deployment.delay",
                        lambda pk: sent.append(pk) or type("Result", (), {"id": "task-1"})())
    return sent


@pytest.fixture(autouse=True)
def _the_owner_holds_the_test_images(request):
    """The test images are the owner's (builds/access.py lets a user deploy only images their records hold)."""
    if "images" not in request.fixturenames or "owner" not in request.fixturenames:
        return
    from builds.models import Image

    owner, built = request.getfixturevalue("owner"), request.getfixturevalue("images")
    for tag, image_id in built.items():
        Image.objects.get_or_create(owner=owner, image_id=image_id, defaults={"tags": [tag]})
