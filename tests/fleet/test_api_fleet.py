"""The whole fleet story through the API and a real Celery worker: deploy to three real engines at once,
redeploy, roll back, lose a host."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.db import connection

from console.engine.containers import list_containers
from fleet import services
from fleet.models import Host
from tests.fixtures.fleet import wait_final
from tests.fleet.conftest import HELLO, ROOT, http_get, remove_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(tmp_path):
    """A real worker process consuming the real broker, writing to the test database."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker shares the test database over a connection: run on PostgreSQL")
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/"
                           f"{db['NAME']}",
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    output = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 (closed below, after the worker)
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool=solo", "--without-gossip",
         "--without-mingle", "--loglevel=WARNING", "-n", f"{name}@%h"],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    process.wait(timeout=30)
    output.close()


def answers(body: dict) -> dict[str, str]:
    return {target["host_name"]: http_get(target["url"]) for target in body["targets"]}


def test_it_deploys_to_every_host_at_once_redeploys_and_rolls_back(owner_api, owner, hosts, images, worker, fleet):
    try:
        answer = owner_api.post("/api/v1/deployments/", {
            "image": HELLO, "selector": "env=test", "name": "hello", "ports": {"8080/tcp": 8080},
            "env": {"WHO": "Sean and Karl"}, "restart_policy": "unless-stopped", "memory_limit": "64m", "cpus": 0.5,
        }, format="json")
        assert answer.status_code == 202, answer.json()
        assert answer.json()["status"] == "queued"
        assert sorted(target["host_name"] for target in answer.json()["targets"]) == ["plain", "tls", "vfs"]

        first = wait_final(owner_api, answer.json()["id"])

        assert first["status"] == "succeeded", first
        assert first["image_id"] == images[HELLO]
        addresses = {target["url"] for target in first["targets"]}
        assert addresses == {f"http://{host.address}:8080/" for host in fleet}
        assert set(answers(first).values()) == {"Hello Sean and Karl. Wish you were here.\n"}
        with fleet.tls.engine() as engine:
            (container,) = list_containers(engine, labels={"console.deployment.name": "hello"})
            host_config = engine.api.inspect_container(container["id"])["HostConfig"]
        assert container["labels"].items() >= {
            "console.managed": "true", "console.deployment.name": "hello",
            "console.deployment.id": str(first["id"]), "console.image.digest": images[HELLO],
        }.items()
        assert (host_config["RestartPolicy"]["Name"], host_config["Memory"], host_config["NanoCpus"]) == (
            "unless-stopped", 64 * 1024 * 1024, 500_000_000)

        second = owner_api.post("/api/v1/deployments/", {
            "image": HELLO, "hosts": [host.pk for host in hosts], "name": "hello", "ports": {"8080/tcp": 8080},
            "env": {"WHO": "Mr Wolf"},
        }, format="json").json()
        second = wait_final(owner_api, second["id"])
        assert second["status"] == "succeeded", second
        assert set(answers(second).values()) == {"Hello Mr Wolf. Wish you were here.\n"}
        for fleet_host in fleet:
            with fleet_host.engine() as engine:
                names = [c["name"] for c in list_containers(engine, labels={"console.deployment.name": "hello"})]
            assert names == [f"hello-{second['id']}"]

        rollback = owner_api.post(f"/api/v1/deployments/{second['id']}/rollback/")
        assert rollback.status_code == 202, rollback.json()
        assert rollback.json()["rollback_of"] == first["id"]
        assert rollback.json()["image"] == images[HELLO]
        third = wait_final(owner_api, rollback.json()["id"])
        assert third["status"] == "succeeded", third
        assert set(answers(third).values()) == {"Hello Sean and Karl. Wish you were here.\n"}
        log = owner_api.get(f"/api/v1/deployments/{third['id']}/log/").json()
        assert any("already has image" in line for line in log["lines"])
        history = owner_api.get("/api/v1/deployments/?name=hello").json()
        assert [item["id"] for item in history["results"]] == [third["id"], second["id"], first["id"]]
    finally:
        remove_app(fleet, "hello")


def test_a_host_whose_engine_stopped_fails_alone_and_turns_down(owner_api, owner, hosts, images, worker, fleet):
    fleet.vfs.stop()
    try:
        answer = owner_api.post("/api/v1/deployments/", {
            "image": HELLO, "selector": "env=test", "name": "lonely", "ports": {"8080/tcp": 8383},
            "env": {"WHO": "the others"},
        }, format="json")
        body = wait_final(owner_api, answer.json()["id"])

        targets = {target["host_name"]: target for target in body["targets"]}
        assert body["status"] == "failed"
        assert targets["vfs"]["status"] == "failed"
        assert targets["vfs"]["error"] == (
            f"Connecting: the Docker Engine at {fleet.vfs.url} does not answer (connection refused)"
        )
        assert body["error"] == f"1 of 3 host(s) failed: vfs: {targets['vfs']['error']}"
        for name in ("plain", "tls"):
            assert targets[name]["status"] == "succeeded"
            assert http_get(targets[name]["url"]) == "Hello the others. Wish you were here.\n"

        services.check_all_hosts()
        vfs = Host.objects.get(name="vfs")
        assert vfs.status == "down"
        assert "does not answer (connection refused)" in vfs.status_reason
        assert Host.objects.get(name="plain").status == "up"
    finally:
        fleet.vfs.start()
        remove_app(fleet, "lonely")
    assert services.check_host(Host.objects.get(name="vfs")).status == "up"
