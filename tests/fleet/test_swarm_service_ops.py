"""A swarm app's service after its first deployment, through a real worker, on a real swarm of three engines
(tests/fixtures/swarm.py) pulling from a registry with Basic auth on the manager's gateway: scale 3 -> 6 -> 2
(counted on the engines; the running tasks are not rolled), a user's rollback of a release (the previous digest
runs again on every node), a scale of a service with a published port (2 of the 3 nodes answer), and the removal
of the service (nothing answers, the swarm has no service); and with the console's own registry (token auth, its
token endpoint served on the nodes' gateway), a task Swarm reschedules on a node without the image long after the
registry tokens of the deployment expired still pulls, with the service's long-lived pull credential. One swarm,
two registries and one worker for the module."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from console.audit.models import AuditEvent
from console.constants import FINAL_STATUSES
from fleet.models import Host
from fleet.services.hosts import check_host
from registry.constants import RegistryKind
from registry.models import RegistryAccount
from registry.services import ensure_console_account
from registry.tokens import CERT_FILE, Scope, ensure_signing_material, issue_token, namespace_of
from tests.fixtures.registry import (
    REGISTRY_USER,
    TOKEN_ISSUER,
    TOKEN_SERVICE,
    GatewayRegistry,
    gateway_basic_registry,
    push_image,
    start_distribution,
)
from tests.fixtures.swarm import swarm  # noqa: F401  (the module's swarm)
from tests.fixtures.worker import routed_to, running_worker
from tests.fleet.conftest import HEALTHY, HELLO, http_get

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

PORT = 8687
REPOSITORY = "team/swarm-ops"
# Distribution accepts a token this long past its expiry (registry/auth/token: Leeway), seconds.
DISTRIBUTION_LEEWAY = 60
# All tasks at once, each stopped before its replacement starts (a node's host-mode port is free only then).
UPDATE = {"parallelism": 0, "delay": 0, "order": "stop-first", "failure_action": "rollback", "monitor": 1}


@pytest.fixture(scope="module")
def registry(swarm):  # noqa: F811
    with gateway_basic_registry(swarm.manager.gateway, prefix="swarm-ops-registry-") as registry:
        yield registry


@pytest.fixture(scope="module")
def tags(registry, images):
    """examples/hello and a variant of it with a HEALTHCHECK (another digest), pushed once for the module."""
    tag = uuid.uuid4().hex[:8]
    push_image(registry, images[HELLO], REPOSITORY, f"one-{tag}", registry.credentials)
    push_image(registry, images[HEALTHY], REPOSITORY, f"two-{tag}", registry.credentials)
    return {"one": f"{registry.address}/{REPOSITORY}:one-{tag}", "two": f"{registry.address}/{REPOSITORY}:two-{tag}"}


@pytest.fixture(scope="module")
def realm(swarm, django_db_setup, django_db_blocker):  # noqa: F811
    """The console's web side on every address (its token endpoint reached by the nodes on their gateway)."""
    with django_db_blocker.unblock():
        server = LiveServer("0.0.0.0:0")  # noqa: S104 (the test fleet's namespaces reach it on their gateway)
    try:
        yield f"http://{swarm.manager.gateway}:{server.thread.port}/registry/token/"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_registry(swarm, realm):  # noqa: F811
    """The console's own registry on the nodes' gateway: token auth, trusting the console's signing certificate,
    sending clients to the console's token endpoint."""
    with tempfile.TemporaryDirectory(prefix="swarm-ops-console-registry-") as directory:
        path = Path(directory)
        ensure_signing_material(path)
        auth = {"token": {"realm": realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                          "rootcertbundle": str(path / CERT_FILE)}}
        server = start_distribution(path, auth, listen="0.0.0.0")
        try:
            yield GatewayRegistry(server, swarm.manager.gateway)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def registry_settings(own_registry) -> dict[str, str]:
    # Registry tokens live 30 s (the least the settings take): a task rescheduled after that cannot use them.
    return {"REGISTRY_ADDRESS": own_registry.address, "REGISTRY_SERVICE": TOKEN_SERVICE,
            "REGISTRY_ISSUER": TOKEN_ISSUER, "REGISTRY_DIR": str(own_registry.server.directory),
            "REGISTRY_TOKEN_TTL": "30"}


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory, registry_settings):
    with running_worker(tmp_path_factory.mktemp("worker"), queues=("celery",), env=registry_settings) as worker:
        yield worker


@pytest.fixture
def setup(owner, registry, swarm):  # noqa: F811
    account = RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                             url=f"http://{registry.address}", username=REGISTRY_USER,
                                             secret=registry.server.password)
    host = check_host(Host.objects.create(owner=owner, name="swarm", url=swarm.manager.url))
    assert host.swarm is not None, host.swarm_reason
    try:
        yield account, host
    finally:
        with swarm.manager.engine() as engine, engine.errors("Cleaning up"):
            for service in engine.api.services(filters={"label": "console.managed=true"}):
                engine.api.remove_service(service["ID"])


def finished(api, worker, answer) -> dict:
    assert answer.status_code == 202, answer.json()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        current = api.get(f"/api/v1/deployments/{answer.json()['id']}/").json()
        if current["status"] in FINAL_STATUSES:
            return current
        time.sleep(0.5)
    raise AssertionError(f"the deployment did not finish: {current}\n{worker.output()[-3000:]}")


def deploy(api, worker, **body) -> dict:
    with routed_to(worker):
        return finished(api, worker, api.post("/api/v1/deployments/", body, format="json"))


def scale(api, worker, deployment: dict, replicas: int) -> dict:
    with routed_to(worker):
        return finished(api, worker, api.post(f"/api/v1/deployments/{deployment['id']}/scale/",
                                              {"replicas": replicas}, format="json"))


def service_of(swarm, name: str) -> dict | None:  # noqa: F811
    with swarm.manager.engine() as engine:
        found = engine.api.services(filters={"name": name})
    return next((service for service in found if service["Spec"]["Name"] == name), None)


def running_tasks(swarm, name: str) -> list[dict]:  # noqa: F811
    """The service's tasks the manager says run (and should)."""
    with swarm.manager.engine() as engine:
        tasks = engine.api.tasks(filters={"service": name})
    return [task for task in tasks if task["Status"]["State"] == "running" and task["DesiredState"] == "running"]


def running_containers(swarm, app: str) -> dict[str, int]:  # noqa: F811
    """How many of the app's containers run on each node, asked of each node's own engine."""
    counts = {}
    for member in swarm.members:
        with member.engine() as engine:
            counts[member.address] = len(engine.api.containers(
                filters={"label": f"console.deployment.name={app}", "status": "running"}))
    return counts


def answers(swarm, expected: str, serving: int | None = None) -> dict[str, str]:  # noqa: F811
    """Each node's answer on the app's port, retried briefly while fewer than `serving` nodes (all unless said)
    answer `expected` (a task's port opens as it starts, a stopped one's closes as it stops)."""
    serving = len(swarm.members) if serving is None else serving
    deadline = time.monotonic() + 15
    while True:
        found = {}
        for member in swarm.members:
            try:
                found[member.address] = http_get(f"http://{member.address}:{PORT}/", timeout=2)
            except OSError:
                found[member.address] = "no answer"
        if sum(answer == expected for answer in found.values()) == serving and (
                sum(answer == "no answer" for answer in found.values()) == len(found) - serving):
            return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_it_scales_3_to_6_to_2_without_rolling_the_running_tasks(owner, owner_api, swarm, tags, setup,  # noqa: F811
                                                                worker):
    account, host = setup
    name = f"scaled-u{owner.pk}"
    first = deploy(owner_api, worker, name="scaled", image=tags["one"], registry=account.pk, hosts=[host.pk],
                   env={"WHO": "many"}, replicas=3, update=UPDATE)
    assert first["status"] == "succeeded", (first["error"], first["targets"])
    digest = first["image_digest"].rpartition("@")[2]
    template = service_of(swarm, name)["Spec"]["TaskTemplate"]
    three = {task["ID"] for task in running_tasks(swarm, name)}
    assert len(three) == 3

    six = scale(owner_api, worker, first, 6)

    assert six["status"] == "succeeded", (six["error"], six["targets"])
    assert (six["scale_of"], six["swarm"]["replicas"], six["image_digest"]) == (first["id"], 6, first["image_digest"])
    tasks = running_tasks(swarm, name)
    assert len(tasks) == 6 and {task["Spec"]["ContainerSpec"]["Image"].rpartition("@")[2] for task in tasks} == {
        digest}
    # The three tasks that ran still run: Swarm started three more and rolled none.
    assert three <= {task["ID"] for task in tasks}
    assert sum(running_containers(swarm, "scaled").values()) == 6
    service = service_of(swarm, name)
    assert service["Spec"]["TaskTemplate"] == template and service["Spec"]["Mode"]["Replicated"]["Replicas"] == 6
    assert service["Spec"]["Labels"]["console.deployment.id"] == str(six["id"])
    (target,) = six["targets"]
    assert (target["service"]["replicas"], target["service"]["running"]) == (6, 6)
    lines = owner_api.get(f"/api/v1/deployments/{six['id']}/log/").json()["lines"]
    assert any("from 3 to 6 replica(s)" in line for line in lines), lines

    two = scale(owner_api, worker, six, 2)

    assert two["status"] == "succeeded", (two["error"], two["targets"])
    tasks = running_tasks(swarm, name)
    assert len(tasks) == 2 and {task["ID"] for task in tasks} <= {task["ID"] for task in running_tasks_seen(six)}
    assert sum(running_containers(swarm, "scaled").values()) == 2
    assert service_of(swarm, name)["Spec"]["TaskTemplate"] == template
    assert AuditEvent.objects.filter(action="scale").count() == 2


def running_tasks_seen(deployment: dict) -> list[dict]:
    """The tasks a deployment's target last saw running (the API's record, by Swarm's task id)."""
    (target,) = deployment["targets"]
    return [{"ID": task["id"]} for task in target["service"]["tasks"] if task["state"] == "running"]


def test_a_user_rolls_back_scales_and_removes_a_service_with_a_published_port(  # noqa: PLR0915
        owner, owner_api, swarm, tags, setup, worker):  # noqa: F811
    account, host = setup
    name = f"web-u{owner.pk}"
    request = {"name": "web", "registry": account.pk, "hosts": [host.pk], "ports": {"8080/tcp": PORT}, "replicas": 3,
               "update": UPDATE}
    one = deploy(owner_api, worker, image=tags["one"], env={"WHO": "one"}, **request)
    assert one["status"] == "succeeded", (one["error"], one["targets"])
    two = deploy(owner_api, worker, image=tags["two"], env={"WHO": "two"}, **request)
    assert two["status"] == "succeeded", (two["error"], two["targets"])
    assert two["image_digest"] != one["image_digest"]
    assert set(answers(swarm, "Hello two. Wish you were here.\n").values()) == {"Hello two. Wish you were here.\n"}

    with routed_to(worker):
        back = finished(owner_api, worker, owner_api.post(f"/api/v1/deployments/{two['id']}/rollback/"))

    assert back["status"] == "succeeded", (back["error"], back["targets"])
    assert back["rollback_of"] == one["id"] and back["image_digest"] == one["image_digest"]
    digest = one["image_digest"].rpartition("@")[2]
    tasks = running_tasks(swarm, name)
    assert len(tasks) == 3 and {task["Spec"]["ContainerSpec"]["Image"].rpartition("@")[2] for task in tasks} == {
        digest}
    assert set(answers(swarm, "Hello one. Wish you were here.\n").values()) == {"Hello one. Wish you were here.\n"}
    (target,) = back["targets"]
    assert {task["image_digest"] for task in target["service"]["tasks"] if task["state"] == "running"} == {digest}

    fewer = scale(owner_api, worker, back, 2)

    assert fewer["status"] == "succeeded", (fewer["error"], fewer["targets"])
    found = answers(swarm, "Hello one. Wish you were here.\n", serving=2)
    assert sorted(found.values()) == ["Hello one. Wish you were here.\n"] * 2 + ["no answer"], found
    nodes = {task["node"] for task in fewer["targets"][0]["service"]["tasks"] if task["state"] == "running"}
    assert {address for address, answer in found.items() if answer != "no answer"} == nodes
    # A port is published once per node: more replicas than nodes is refused before anything is recorded.
    refused = owner_api.post(f"/api/v1/deployments/{fewer['id']}/scale/", {"replicas": 4}, format="json")
    assert refused.status_code == 400 and "at most 3" in refused.json()["replicas"][0]

    removed = owner_api.post(f"/api/v1/deployments/{fewer['id']}/remove-service/")

    assert removed.status_code == 200, removed.json()
    assert removed.json()["targets"][0]["service"]["removed"] is True
    assert service_of(swarm, name) is None
    assert set(answers(swarm, "", serving=0).values()) == {"no answer"}
    assert AuditEvent.objects.filter(action="service_removed").count() == 1
    again = owner_api.post(f"/api/v1/deployments/{fewer['id']}/scale/", {"replicas": 3}, format="json")
    assert again.status_code == 409


def test_a_task_rescheduled_after_the_tokens_expired_pulls_with_the_services_credential(  # noqa: PLR0915
        owner, owner_api, swarm, images, own_registry, registry_settings, setup, worker, settings):  # noqa: F811
    _, host = setup
    for key, value in registry_settings.items():
        setattr(settings, key, Path(value) if key == "REGISTRY_DIR" else int(value) if key.endswith("TTL") else value)
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, swarm.manager.gateway]
    repository, tag = f"{namespace_of(owner)}/swarm-pull", uuid.uuid4().hex[:8]
    token = issue_token(owner, TOKEN_SERVICE, [Scope("repository", repository, frozenset({"push", "pull"}))])
    push_image(own_registry, images[HELLO], repository, tag, {"registrytoken": token["token"]})
    account = ensure_console_account(owner)
    # One task, on a worker node: draining that node makes Swarm start it on the other worker, which has no image
    # (a task whose restart condition is "none", the restart policy "no", is not started again elsewhere).
    deployed = time.monotonic()
    first = deploy(owner_api, worker, name="pulled", image=f"{own_registry.address}/{repository}:{tag}",
                   registry=account.pk, hosts=[host.pk], env={"WHO": "later"}, replicas=1,
                   placement=["node.role==worker"], restart_policy="always")
    assert first["status"] == "succeeded", (first["error"], first["targets"])
    (task,) = [task for task in first["targets"][0]["service"]["tasks"] if task["state"] == "running"]
    by_address = {member.address: member.label for member in swarm.workers}
    (other,) = set(by_address) - {task["node"]}
    assert own_registry.pulls_of(repository) >= {task["node"]}
    assert other not in own_registry.pulls_of(repository)
    # Every registry token of the deployment has expired by now, Distribution's 60 s of leeway for clocks included.
    time.sleep(max(0.0, deployed + int(registry_settings["REGISTRY_TOKEN_TTL"]) + DISTRIBUTION_LEEWAY + 5
                   - time.monotonic()))
    try:
        swarm.set_availability(by_address[task["node"]], "drain")
        deadline = time.monotonic() + 90
        while True:
            moved = [each for each in running_tasks(swarm, f"pulled-u{owner.pk}")
                     if each["NodeID"] == swarm.node_ids[by_address[other]]]
            if moved or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        with swarm.manager.engine() as engine:
            tasks = engine.api.tasks(filters={"service": f"pulled-u{owner.pk}"})
            nodes = {node["ID"]: node["Spec"]["Availability"] for node in engine.api.nodes()}
        errors = [(each["NodeID"], each["DesiredState"], each["Status"]["State"], each["Status"].get("Err", ""))
                  for each in tasks], nodes, swarm.node_ids
        # Pulled on the other node, by that node's engine, after the tokens had expired.
        assert moved, errors
        assert other in own_registry.pulls_of(repository)
    finally:
        swarm.set_availability(by_address[task["node"]], "active")
    lines = owner_api.get(f"/api/v1/deployments/{first['id']}/log/").json()["lines"]
    assert not any("console-service-pull" in line or "registrytoken" in line for line in lines)
