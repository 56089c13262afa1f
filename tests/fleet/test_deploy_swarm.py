"""Deployments to a swarm, through a real worker, to a real swarm of three engines (tests/fixtures/swarm.py): the
app as one Swarm service pulled from a registry with Basic auth on the manager's gateway (inside every node's
--insecure-registry range); the nodes have no credentials of their own, so every pull proves the credentials went
with the service. examples/hello with 3 replicas, at most one per node, answers on every node (host-mode ports:
this kernel has no IPVS for the routing mesh); then a release that exits at once is rolled back by Swarm, the
deployment says so and the previous release still answers on every node."""

from __future__ import annotations

import time
import uuid

import pytest
from django.urls import reverse

from console.constants import FINAL_STATUSES
from fleet.models import Host
from fleet.services.hosts import check_host
from registry.constants import RegistryKind
from registry.models import RegistryAccount
from tests.fixtures.registry import REGISTRY_USER, gateway_basic_registry, push_image
from tests.fixtures.swarm import swarm  # noqa: F401  (the module's swarm)
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import BROKEN, HELLO, http_get

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

PORT = 8686
SETTINGS = {"replicas": 3, "placement": {"max_replicas_per_node": 1},
            # stop-first: a node's host-mode port is free for the new task only once the old one stopped.
            "update": {"parallelism": 1, "delay": 0, "order": "stop-first", "failure_action": "rollback",
                       "monitor": 3},
            "rollback": {"parallelism": 0, "order": "stop-first", "failure_action": "pause"}}


@pytest.fixture(scope="module")
def registry(swarm):  # noqa: F811
    with gateway_basic_registry(swarm.manager.gateway, prefix="swarm-registry-") as registry:
        yield registry


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(tmp_path_factory.mktemp("worker"), queues=("celery",)) as worker:
        yield worker


def deploy(api, worker, **body) -> dict:
    with routed_to(worker):
        answer = api.post("/api/v1/deployments/", body, format="json")
    assert answer.status_code == 202, answer.json()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        current = api.get(f"/api/v1/deployments/{answer.json()['id']}/").json()
        if current["status"] in FINAL_STATUSES:
            return current
        time.sleep(0.5)
    raise AssertionError(f"the deployment did not finish: {current}\n{worker.output()[-3000:]}")


def remove_services(swarm) -> None:  # noqa: F811
    with swarm.manager.engine() as engine, engine.errors("Cleaning up"):
        for service in engine.api.services(filters={"label": "console.managed=true"}):
            engine.api.remove_service(service["ID"])


def answers(swarm, expected: str) -> dict[str, str]:  # noqa: F811
    """Each swarm node's answer on the app's port (retried briefly: a task's port opens as it starts)."""
    found = {}
    for member in swarm.members:
        deadline = time.monotonic() + 15
        while True:
            try:
                found[member.address] = http_get(f"http://{member.address}:{PORT}/")
                if found[member.address] == expected or time.monotonic() > deadline:
                    break
            except OSError as exc:
                found[member.address] = f"no answer: {exc}"
                if time.monotonic() > deadline:
                    break
            time.sleep(0.5)
    return found


def test_it_runs_a_service_on_every_node_and_swarm_rolls_a_broken_release_back(
    owner, owner_api, owner_client, images, swarm, registry, worker  # noqa: F811
):
    tag = uuid.uuid4().hex[:8]
    push_image(registry, images[HELLO], "team/swarm-hello", tag, registry.credentials)
    push_image(registry, images[BROKEN], "team/swarm-hello", f"broken-{tag}", registry.credentials)
    account = RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                             url=f"http://{registry.address}", username=REGISTRY_USER,
                                             secret=registry.server.password)
    host = check_host(Host.objects.create(owner=owner, name="swarm", url=swarm.manager.url))
    assert host.swarm is not None, host.swarm_reason
    request = {"name": "swarm-hello", "registry": account.pk, "hosts": [host.pk], "ports": {"8080/tcp": PORT},
               "env": {"WHO": "the swarm"}, **SETTINGS}
    try:
        first = deploy(owner_api, worker, image=f"{registry.address}/team/swarm-hello:{tag}", **request)

        assert first["status"] == "succeeded", (first["error"], first["targets"])
        assert first["swarm"]["replicas"] == 3 and first["image_digest"].startswith(
            f"{registry.address}/team/swarm-hello@sha256:")
        digest = first["image_digest"].rpartition("@")[2]
        (target,) = first["targets"]
        service = target["service"]
        assert service["replicas"] == 3 and service["running"] == 3 and service["update_state"] == ""
        running = [task for task in service["tasks"] if task["state"] == "running"]
        assert sorted(task["node"] for task in running) == sorted(member.address for member in swarm.members)
        assert {task["image_digest"] for task in running} == {digest}
        assert answers(swarm, "Hello the swarm. Wish you were here.\n") == {
            member.address: "Hello the swarm. Wish you were here.\n" for member in swarm.members}
        # Every node pulled by itself, with the credentials the service carried (the workers have none).
        assert registry.pulls_of("team/swarm-hello") >= {member.address for member in swarm.members}
        with swarm.manager.engine() as engine:
            (created,) = engine.api.services(filters={"name": f"swarm-hello-u{owner.pk}"})
        spec = created["Spec"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == f"{registry.address}/team/swarm-hello:{tag}@{digest}"
        assert spec["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
        assert spec["UpdateConfig"]["FailureAction"] == "rollback" and spec["UpdateConfig"]["Monitor"] == 3 * 10**9
        assert spec["Labels"]["console.deployment.owner"] == str(owner.pk)
        assert registry.server.password not in "\n".join(
            owner_api.get(f"/api/v1/deployments/{first['id']}/log/").json()["lines"])
        page = owner_client.get(reverse("fleet:deployment-detail", args=[first["id"]])).content.decode()
        assert "Service on swarm" in page and all(task["id"][:12] in page for task in running)

        broken = deploy(owner_api, worker, image=f"{registry.address}/team/swarm-hello:broken-{tag}", **request)

        assert broken["status"] == "failed", broken
        (target,) = broken["targets"]
        assert target["error"].startswith("rolled back by Swarm after: "), target
        assert target["error"].endswith("; the previous release keeps serving")
        assert "task: non-zero exit (3) on 10.203." in target["error"]
        assert target["service"]["update_state"] == "rollback_completed"
        assert answers(swarm, "Hello the swarm. Wish you were here.\n") == {
            member.address: "Hello the swarm. Wish you were here.\n" for member in swarm.members}
        running = [task for task in target["service"]["tasks"] if task["state"] == "running"]
        assert {task["image_digest"] for task in running} == {digest} and len(running) == 3
    finally:
        remove_services(swarm)
