"""Replacing a running app on a host: the old container goes only once the new one serves, else it serves on."""

from __future__ import annotations

import pytest

from console.constants import JobStatus
from console.engine.containers import list_containers
from fleet import services
from fleet.models import Deployment
from tests.fleet.conftest import BROKEN, HEALTHY, HELLO, UNHEALTHY, http_get, register, remove_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_queue(monkeypatch):
    """Deployments are run here by calling the task's body; nothing goes to the broker."""
    monkeypatch.setattr("fleet.services.deployments._enqueue_deployment", lambda deployment: None)


def deploy(owner, host, image, name, who="Sean and Karl", port=8080) -> Deployment:
    deployment = services.create_deployment(owner, {
        "name": name, "image": image, "hosts": [host.pk], "ports": {"8080/tcp": port}, "env": {"WHO": who},
    })
    services.run_deployment(deployment.pk)
    deployment.refresh_from_db()
    return deployment


def app_containers(fleet_host, name):
    with fleet_host.engine() as engine:
        return list_containers(engine, labels={"console.deployment.name": name})


def test_it_keeps_the_old_container_serving_when_the_new_one_exits(owner, fleet, images, no_queue):
    host = register(owner, fleet.plain)
    try:
        first = deploy(owner, host, HELLO, "keeper", port=8181)
        assert first.status == JobStatus.SUCCEEDED, first.error
        url = first.targets.get().url
        assert http_get(url) == "Hello Sean and Karl. Wish you were here.\n"

        broken = deploy(owner, host, BROKEN, "keeper", port=8181)

        assert broken.status == JobStatus.FAILED
        target = broken.targets.get()
        assert target.status == JobStatus.FAILED
        assert "the container exited with code 3" in target.error
        assert "broken on purpose" in target.error
        assert f"the previous container (keeper-{first.pk}) keeps serving" in target.error
        assert http_get(url) == "Hello Sean and Karl. Wish you were here.\n"
        containers = app_containers(fleet.plain, "keeper")
        assert [(c["name"], c["state"]) for c in containers] == [(f"keeper-{first.pk}", "running")]
    finally:
        remove_app(fleet, "keeper")


def test_it_waits_for_health_and_refuses_an_unhealthy_replacement(owner, fleet, images, no_queue):
    host = register(owner, fleet.plain)
    try:
        healthy = deploy(owner, host, HEALTHY, "checked", port=8282)
        assert healthy.status == JobStatus.SUCCEEDED, healthy.error
        assert "waiting until healthy" not in healthy.error
        with fleet.plain.engine() as engine:
            state = engine.api.inspect_container(healthy.targets.get().container_id)["State"]
        assert state["Health"]["Status"] == "healthy"

        sick = deploy(owner, host, UNHEALTHY, "checked", port=8282)

        target = sick.targets.get()
        assert target.status == JobStatus.FAILED
        assert target.error.startswith("the container's health check failed: sick")
        assert http_get(healthy.targets.get().url) == "Hello Sean and Karl. Wish you were here.\n"
        assert [c["name"] for c in app_containers(fleet.plain, "checked")] == [f"checked-{healthy.pk}"]
    finally:
        remove_app(fleet, "checked")
