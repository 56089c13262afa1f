"""Rollouts on a real swarm of three engines (tests/fixtures/swarm.py), through a real worker, from a registry with
Basic auth the nodes reach (as tests/fleet/test_deploy_swarm.py): a start-first update keeps the old task serving
while its replacement starts; a drained node's tasks move to the others, and the host check records where they run
now; a manager that stops answering (its dockerd frozen with SIGSTOP, thawed by pid afterwards) ends the
deployment that follows its rollout, failed and saying so, and refuses what is asked of it meanwhile with a 503
and nothing recorded.

The releases are examples/hello with a graceful stop (asked to stop, a task serves 3 more seconds, as an app that
finishes its requests would): what Swarm does between a new task running and the old one stopping takes long
enough to be seen, whatever the load on this machine."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest

from console.audit.models import AuditEvent
from console.constants import FINAL_STATUSES
from console.engine import Engine, EngineError
from fleet.constants import SWARM_POLL_TIMEOUT, SWARM_SILENCE_SECONDS
from fleet.models import Deployment, Host
from fleet.services.hosts import check_host
from registry.constants import RegistryKind
from registry.models import RegistryAccount
from tests.fixtures.registry import REGISTRY_USER
from tests.fixtures.swarm import swarm  # noqa: F401  (the module's swarm)
from tests.fixtures.worker import routed_to
from tests.fleet.conftest import HELLO, _build, http_get
from tests.fleet.test_deploy_from_registry import push
from tests.fleet.test_deploy_swarm import registry, remove_services, worker  # noqa: F401  (module fixtures)

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

PORT = 8687
REPOSITORY = "team/rollouts"
# Asked to stop, the app serves on for 3 seconds, then exits.
GRACEFUL = (
    "FROM {base}\nLABEL console.test.release={release}\n"
    'CMD ["sh", "-c", "httpd -f -p \\"$PORT\\" -h /app/www & pid=$!; trap \'sleep 3; kill $pid\' TERM; wait $pid"]\n'
)
DEADLINE = 240


@dataclass
class Releases:
    """Tags of the module's images in the registry: two graceful releases and plain examples/hello."""

    tag: str
    graceful: list[str] = field(default_factory=list)
    hello: str = ""


@pytest.fixture(scope="module")
def releases(images, registry):  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    credentials = {"username": registry.server.username, "password": registry.server.password,
                   "serveraddress": registry.push_address}
    built = []
    found = Releases(tag=tag)
    try:
        with Engine.for_builds() as engine:
            for release in (1, 2):
                name = f"console-test/swarm-graceful:{tag}-{release}"
                built.append(name)
                image_id = _build(engine, name, dockerfile=GRACEFUL.format(base=HELLO, release=release))
                push(registry, image_id, REPOSITORY, f"graceful-{tag}-{release}", credentials)
                found.graceful.append(f"{registry.address}/{REPOSITORY}:graceful-{tag}-{release}")
        push(registry, images[HELLO], REPOSITORY, f"hello-{tag}", credentials)
        found.hello = f"{registry.address}/{REPOSITORY}:hello-{tag}"
        yield found
    finally:
        with Engine.for_builds() as engine, contextlib.suppress(EngineError), engine.errors("Cleaning up"):
            for name in built:
                engine.api.remove_image(name, force=True)


@pytest.fixture
def manager(owner, swarm, registry):  # noqa: F811
    """The swarm's manager registered (and checked) as the owner's host, with the registry's account."""
    RegistryAccount.objects.create(owner=owner, name="team", kind=RegistryKind.GENERIC,
                                   url=f"http://{registry.address}", username=REGISTRY_USER,
                                   secret=registry.server.password)
    host = check_host(Host.objects.create(owner=owner, name="swarm", url=swarm.manager.url))
    assert host.swarm is not None, host.swarm_reason
    try:
        yield host
    finally:
        remove_services(swarm)


def start(api, worker, **body) -> int:  # noqa: F811
    account = RegistryAccount.objects.get(name="team")
    with routed_to(worker):
        answer = api.post("/api/v1/deployments/", {"registry": account.pk, **body}, format="json")
    assert answer.status_code == 202, answer.json()
    return answer.json()["id"]


def wait_final(api, worker, deployment_id: int, timeout: float = DEADLINE) -> dict:  # noqa: F811
    deadline = time.monotonic() + timeout
    while True:
        current = api.get(f"/api/v1/deployments/{deployment_id}/").json()
        if current["status"] in FINAL_STATUSES:
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"the deployment did not finish: {current}\n{worker.output()[-3000:]}")
        time.sleep(0.3)


def deploy(api, worker, **body) -> dict:  # noqa: F811
    return wait_final(api, worker, start(api, worker, **body))


def tasks(swarm, service: str) -> list[dict]:  # noqa: F811
    with swarm.manager.engine() as engine, engine.errors("Reading the test service's tasks"):
        return engine.api.tasks(filters={"service": service})


def digest_of(task: dict) -> str:
    return task["Spec"]["ContainerSpec"]["Image"].rpartition("@")[2]


def wait_for(what: str, condition, timeout: float = 90, describe=None):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s" + (f": {describe()}" if describe else ""))
        time.sleep(0.3)


class Watch(threading.Thread):
    """While an update runs: the service's tasks as the manager lists them, and a GET of each node's address,
    every 0.1 s. Records each slot seen with a task of the old and one of the new digest running at once, and how
    many nodes answered in each round."""

    def __init__(self, swarm, service: str, old: str, new: str) -> None:  # noqa: F811
        super().__init__(daemon=True)
        self.swarm, self.service, self.old, self.new = swarm, service, old, new
        self.stopping = threading.Event()
        self.overlaps: set[int] = set()
        self.answered: list[int] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            running: dict[int, set[str]] = {}
            for task in tasks(self.swarm, self.service):
                if task["Status"]["State"] == "running":
                    running.setdefault(task["Slot"], set()).add(digest_of(task))
            self.overlaps |= {slot for slot, digests in running.items() if {self.old, self.new} <= digests}
            count = 0
            for member in self.swarm.members:
                try:
                    http_get(f"http://{member.address}:{PORT}/", timeout=5)
                    count += 1
                except OSError as exc:
                    self.failures.append(f"{member.address}: {exc}")
            self.answered.append(count)
            time.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def test_a_start_first_update_keeps_the_old_task_serving_while_the_new_one_starts(
    owner, owner_api, swarm, registry, worker, releases, manager  # noqa: F811
):
    request = {"name": "first", "hosts": [manager.pk], "ports": {"8080/tcp": PORT}, "env": {"WHO": "start-first"},
               "replicas": 2, "placement": {"max_replicas_per_node": 1},
               # A third node is free: each new task starts there (its host-mode port is free) before the old stops.
               "update": {"parallelism": 1, "delay": 0, "order": "start-first", "failure_action": "rollback",
                          "monitor": 1}}
    first = deploy(owner_api, worker, image=releases.graceful[0], **request)
    assert first["status"] == "succeeded", (first["error"], first["targets"])
    old = first["image_digest"].rpartition("@")[2]
    service = f"first-u{owner.pk}"

    deployment_id = start(owner_api, worker, image=releases.graceful[1], **request)
    watch = Watch(swarm, service, old, new="")
    # The new digest is known once the worker pinned the tag.
    new = wait_for("the new release's digest", lambda: Deployment.objects.get(pk=deployment_id).image_digest)
    watch.new = new.rpartition("@")[2]
    watch.start()
    try:
        second = wait_final(owner_api, worker, deployment_id)
    finally:
        watch.stop()

    assert second["status"] == "succeeded", (second["error"], second["targets"])
    assert watch.new != old
    # Both slots were replaced start-first: the old task ran on while the new one was already running.
    assert watch.overlaps == {1, 2}, watch.overlaps
    # And the app answered throughout: never fewer nodes than replicas (a stop-first update has one fewer while
    # each task is replaced), so a client that tries another node never goes unanswered.
    assert watch.answered and min(watch.answered) >= 2, (watch.answered, watch.failures[-10:])
    (target,) = second["targets"]
    running = [task for task in target["service"]["tasks"] if task["desired_state"] == "running"]
    assert len(running) == 2 and {task["state"] for task in running} == {"running"}
    assert {task["image_digest"] for task in running} == {watch.new}
    # Done once every task ran the new release for the monitor window, as `docker service update` judges it;
    # Swarm itself may still be waiting its update delay before it says completed.
    assert target["service"]["update_state"] in ("completed", "updating")
    assert "every task ran the new release for the monitor window (1 s)" in "\n".join(
        owner_api.get(f"/api/v1/deployments/{deployment_id}/log/").json()["lines"]) or (
        target["service"]["update_state"] == "completed")
    assert {digest_of(task) for task in tasks(swarm, service) if task["DesiredState"] == "running"} == {watch.new}


def test_draining_a_node_moves_its_tasks_and_the_host_check_records_where_they_run(
    owner, owner_api, swarm, registry, worker, releases, manager  # noqa: F811
):
    # No published port: three tasks may share two nodes once one is drained.
    deployed = deploy(owner_api, worker, name="drained", image=releases.hello, hosts=[manager.pk],
                      env={"WHO": "drain"}, replicas=3)
    assert deployed["status"] == "succeeded", (deployed["error"], deployed["targets"])
    service = f"drained-u{owner.pk}"
    worker1, drained = swarm.workers[0], swarm.node_ids[swarm.workers[0].label]

    def running_on() -> list[str]:
        return sorted(task["NodeID"] for task in tasks(swarm, service)
                      if task["DesiredState"] == "running" and task["Status"]["State"] == "running")

    assert drained in running_on(), "Swarm spread three replicas over three nodes, one on each"
    try:
        answer = owner_api.post(f"/api/v1/hosts/{manager.pk}/swarm/nodes/{drained}/availability/",
                                {"availability": "drain"}, format="json")
        assert answer.status_code == 200, answer.json()
        assert answer.json()["availability"] == "drain"
        nodes = {node["id"]: node for node in owner_api.get(f"/api/v1/hosts/{manager.pk}/").json()["swarm"]["nodes"]}
        assert nodes[drained]["availability"] == "drain" and nodes[drained]["address"] == worker1.address

        moved = wait_for("three tasks running, none on the drained node",
                         lambda: (found := running_on()) and len(found) == 3 and drained not in found and found,
                         describe=lambda: [(task["NodeID"], task["DesiredState"], task["Status"])
                                           for task in tasks(swarm, service)])
        assert set(moved) <= {swarm.node_ids[swarm.manager.label], swarm.node_ids[swarm.workers[1].label]}

        # The deployment ended long ago: the host check reads its service again.
        assert owner_api.post(f"/api/v1/hosts/{manager.pk}/check/").status_code == 200
        (target,) = owner_api.get(f"/api/v1/deployments/{deployed['id']}/").json()["targets"]
        running = [task for task in target["service"]["tasks"]
                   if task["desired_state"] == "running" and task["state"] == "running"]
        assert sorted(task["node_id"] for task in running) == moved
        assert worker1.address not in {task["node"] for task in running}
        assert target["service"]["running"] == 3
        # The task that left the drained node is on record too, shut down.
        assert any(task["node_id"] == drained and task["desired_state"] == "shutdown"
                   for task in target["service"]["tasks"])

        answer = owner_api.post(f"/api/v1/hosts/{manager.pk}/swarm/nodes/{drained}/availability/",
                                {"availability": "active"}, format="json")
        assert answer.status_code == 200 and answer.json()["availability"] == "active"
        nodes = {node["id"]: node for node in owner_api.get(f"/api/v1/hosts/{manager.pk}/").json()["swarm"]["nodes"]}
        assert nodes[drained]["availability"] == "active"
    finally:
        swarm.set_availability(worker1.label, "active")


@contextlib.contextmanager
def frozen(swarm):  # noqa: F811
    """The manager's dockerd stopped with SIGSTOP (its containers, their containerd, run on); SIGCONT by its pid
    afterwards, then the swarm's nodes all ready again."""
    pid = swarm.manager.pid
    assert pid, "the manager's engine runs"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        swarm.wait_ready()


def test_a_manager_that_stops_answering_fails_the_rollout_it_followed_and_refuses_what_is_asked_of_it(
    owner, owner_api, swarm, registry, worker, releases, manager  # noqa: F811
):
    # A slow rollout: 20 s between the two tasks, so that the console is following it when the manager freezes.
    request = {"name": "silent", "hosts": [manager.pk], "env": {"WHO": "silence"}, "replicas": 2,
               "update": {"parallelism": 1, "delay": 20, "order": "stop-first", "failure_action": "rollback",
                          "monitor": 1}}
    first = deploy(owner_api, worker, image=releases.graceful[0], **request)
    assert first["status"] == "succeeded", (first["error"], first["targets"])

    deployment_id = start(owner_api, worker, image=releases.graceful[1], **request)
    wait_for("the console following Swarm's update", lambda: (
        (target := Deployment.objects.get(pk=deployment_id).targets.get()).service
        and target.service.get("update_state") == "updating"))
    drains = AuditEvent.objects.filter(action="node_availability_set").count()
    with frozen(swarm):
        stopped = time.monotonic()
        failed = wait_final(owner_api, worker, deployment_id, timeout=180)
        took = time.monotonic() - stopped

        assert failed["status"] == "failed", failed
        (target,) = failed["targets"]
        assert target["status"] == "failed" and target["step"] == "" and target["finished_at"], target
        assert target["error"].startswith(f"the manager swarm ({swarm.manager.url}) does not answer: "), target
        assert "did not answer in time" in target["error"] and "Swarm goes on with the rollout" in target["error"]
        # At most: a reading that was under way, the silence itself, one more reading, and the worker's pace.
        assert took < SWARM_SILENCE_SECONDS + 3 * SWARM_POLL_TIMEOUT + 20, took
        assert failed["error"].startswith("1 of 1 host(s) failed: swarm: the manager swarm")

        checked = owner_api.post(f"/api/v1/hosts/{manager.pk}/check/").json()
        assert checked["status"] == "down" and "did not answer in time" in checked["status_reason"], checked
        # The nodes of the last good check stay on record.
        assert {node["id"] for node in checked["swarm"]["nodes"]} == set(swarm.node_ids.values())

        drain = owner_api.post(f"/api/v1/hosts/{manager.pk}/swarm/nodes/{swarm.node_ids['worker1']}/availability/",
                               {"availability": "drain"}, format="json")
        assert drain.status_code == 503, drain.content
        assert "did not answer in time" in drain.json()["detail"]
        assert AuditEvent.objects.filter(action="node_availability_set").count() == drains

        before = Deployment.objects.count()
        account = RegistryAccount.objects.get(name="team")
        with routed_to(worker):
            refused = owner_api.post("/api/v1/deployments/", {**request, "image": releases.graceful[0],
                                                              "registry": account.pk}, format="json")
        assert refused.status_code == 503, refused.content
        assert refused.json()["detail"].startswith("The swarm manager swarm does not answer, so nothing was deployed")
        assert Deployment.objects.count() == before

    # Thawed: the manager answers again, and the rollout is Swarm's to end (on, or back if it counts the
    # tasks it lost sight of while frozen as failed): either way it ends with every task on one release.
    assert owner_api.post(f"/api/v1/hosts/{manager.pk}/check/").json()["status"] == "up"
    assert not Deployment.objects.filter(status__in=("queued", "running")).exists()
    releases_digests = {first["image_digest"].rpartition("@")[2],
                        Deployment.objects.get(pk=deployment_id).image_digest.rpartition("@")[2]}

    def service_state() -> tuple[str, list]:
        with swarm.manager.engine() as engine, engine.errors("Reading the test service"):
            found = engine.api.inspect_service(f"silent-u{owner.pk}")
        return ((found.get("UpdateStatus") or {}).get("State", ""),
                [(digest_of(task), task["Status"]["State"]) for task in tasks(swarm, f"silent-u{owner.pk}")
                 if task["DesiredState"] == "running"])

    def settled() -> bool:
        update_state, current = service_state()
        return (update_state in ("completed", "rollback_completed") and len(current) == 2
                and {state for _, state in current} == {"running"} and len({digest for digest, _ in current}) == 1
                and current[0][0] in releases_digests)

    wait_for("Swarm ending the rollout by itself", settled, timeout=180, describe=service_state)
