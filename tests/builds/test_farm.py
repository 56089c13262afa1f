"""The build farm end to end: two build nodes, each a real engine in its own network namespace with a real Celery
worker bound to it (DOCKER_HOST, BUILD_NODE_NAME), against the test PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from builds.constants import NodeStatus
from builds.models import Build, BuildNode, Image
from builds.services import builds as buildservice
from builds.services import nodes, repositories
from console.constants import FINAL_STATUSES
from console.engine import Engine, EngineNotFound
from console.engine.images import inspect_image
from console.engine.transfer import copy_image
from fleet.models import Deployment
from tests.builds.build_helpers import source_from, wait_for_build
from tests.fixtures.fleet import start_fleet
from tests.fixtures.worker import routed_to, running_worker, wait_for
from tests.fleet.conftest import http_get, register

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
BASE = "busybox:1.35.0"


@pytest.fixture(scope="module")
def farm(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two engines, one worker each: the worker runs one build at a time and takes a second into its queue."""
    fleet = start_fleet([{"label": "n1"}, {"label": "n2"}])
    suffix = uuid.uuid4().hex[:6]
    try:
        with Engine.for_builds() as main:
            for host in fleet.hosts:
                with host.engine(timeout=120) as engine:
                    copy_image(main, engine, BASE)
        with contextlib.ExitStack() as stack:
            workers = {}
            for host in fleet.hosts:
                name = f"farm{suffix}{host.label}"
                # No registry here for the nodes to share their cache through: test_farm_cache.py has one.
                env = {"DOCKER_HOST": host.url, "BUILD_NODE_NAME": name, "BUILD_NODE_CAPACITY": "2",
                       "BUILD_NODE_HEARTBEAT_INTERVAL": "1", "BUILDS_PER_USER": "20", "BUILD_CACHE_SHARING": "0"}
                workers[name] = (host, stack.enter_context(running_worker(
                    tmp_path_factory.mktemp(name), queues=(f"builds.{name}",), concurrency=1, env=env)))
            yield workers
            # Tasks left in the queues of a killed node's worker go with the test.
            client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
            for _, worker in workers.values():
                client.delete(*worker.queues.values())
    finally:
        fleet.teardown()


@pytest.fixture
def farm_nodes(farm, settings):
    settings.BUILDS_PER_USER = 20

    def registered():
        found = {node.name: node for node in BuildNode.objects.filter(name__in=farm)}
        return found if len(found) == 2 and all(buildservice.is_available(n) for n in found.values()) else None

    # The database is emptied after each test: the workers' heartbeats register the nodes again within a second.
    found = wait_for(registered, timeout=30, message="both build nodes to register")
    return {name: (found[name], host, worker) for name, (host, worker) in farm.items()}


@pytest.fixture
def staff_api(db):
    admin = get_user_model().objects.create_user("root", "root@example.com", "x", is_staff=True)
    client = APIClient()
    client.force_authenticate(admin)
    return client


def start(owner, source, **options) -> Build:
    from builds.services.builds import BuildOptions, trigger_build

    return trigger_build(owner, source, BuildOptions(**options))


def on_engine(host, image_id: str) -> bool:
    with host.engine() as engine:
        try:
            inspect_image(engine, image_id)
        except EngineNotFound:
            return False
    return True


def dockerfile(name: str) -> str:
    return f"FROM {BASE}\nRUN echo {name} > /which && sleep 1\nCOPY app.txt /app.txt\n"


def test_it_spreads_builds_over_both_nodes_and_sends_a_repeat_to_its_cache(farm_nodes, owner):
    sources = {}
    for name in ("alpha", "beta", "gamma"):
        repository = repositories.create_repository(owner, name, "")
        sources[name] = source_from(repository, {"Dockerfile": dockerfile(name), "app.txt": name})
    order = ["alpha", "beta", "gamma"] * 3 + ["alpha"]
    builds = [start(owner, sources[name], tags=[f"farm-test/{name}:latest"]) for name in order]
    assert all(build.base_images == [BASE] for build in builds)
    for build in builds:
        wait_for_build(build, timeout=180)
        assert build.status == "succeeded", build.error
    by_name = {node.name: (node, host) for node, host, _ in farm_nodes.values()}
    used = {build.node.name for build in builds}
    assert used == set(by_name), "both nodes took builds"
    for build in builds:
        image = Image.objects.get(build=build)
        # The image lives on the node that built it, and only there: the other engine never saw it.
        assert image.node_id == build.node_id
        assert on_engine(by_name[build.node.name][1], build.image_id)
        other = next(host for name, (_, host) in by_name.items() if name != build.node.name)
        assert not on_engine(other, build.image_id)
        # The analysis ran on the node's queue, against the node's engine (the only one holding the image).
        wait_for(lambda image=image: Image.objects.get(pk=image.pk).analysis_status in ("succeeded", "failed"),
                 timeout=60, message="the image's analysis")
        assert Image.objects.get(pk=image.pk).analysis_status == "succeeded"

    for name in ("alpha", "beta"):
        last = Build.objects.filter(repository__name=name).order_by("-pk").first()
        again = wait_for_build(start(owner, sources[name]), timeout=120)
        assert again.status == "succeeded", again.error
        assert again.node_id == last.node_id, "a repeated build goes where its repository's layers are"
        assert [step.cached for step in again.steps.order_by("number")][1:3] == [True, True]


def test_it_lists_nodes_for_staff_and_drains_one(farm_nodes, staff_api, owner_api, owner):
    listed = staff_api.get("/api/v1/build-nodes/").json()["results"]
    mine = [node for node in listed if node["name"] in farm_nodes]
    assert len(mine) == 2
    for node in mine:
        assert node["status"] == "up" and node["available"] and node["engine_ok"]
        assert BASE in node["base_images"]
        assert node["free_disk"] > 0 and node["capacity"] == 2 and node["running_builds"] == 0
    assert owner_api.get("/api/v1/build-nodes/").status_code == 403

    first, second = sorted(farm_nodes)
    drained = staff_api.post(f"/api/v1/build-nodes/{farm_nodes[first][0].pk}/drain/").json()
    assert drained["drained"] is True and drained["available"] is False
    repository = repositories.create_repository(owner, "drained", "")
    source = source_from(repository, {"Dockerfile": f"FROM {BASE}\nRUN echo drained\n"})
    builds = [start(owner, source) for _ in range(2)]
    for build in builds:
        wait_for_build(build, timeout=120)
        assert build.status == "succeeded" and build.node.name == second
    assert staff_api.post(f"/api/v1/build-nodes/{farm_nodes[first][0].pk}/undrain/").json()["drained"] is False


def test_an_image_a_node_built_deploys_to_a_host_without_it(farm_nodes, owner, owner_api, tmp_path):
    """The issue-13 farm deploy: the image lives only on the node that built it; a deployment to another engine
    streams it from that node (builds/access.py says which engine holds it), not from the build engine."""
    repository = repositories.create_repository(owner, "farm-deploy", "")
    source = source_from(repository, {
        "Dockerfile": f"FROM {BASE}\nCOPY index.html /www/index.html\n"
                      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n',
        "index.html": "built on a farm node\n",
    })
    build = wait_for_build(start(owner, source, tags=["farm-deploy/app:1"]), timeout=180)
    assert build.status == "succeeded", build.error
    by_name = {node.name: host for node, host, _ in farm_nodes.values()}
    builder = by_name[build.node.name]
    other = next(host for name, host in by_name.items() if name != build.node.name)
    assert on_engine(builder, build.image_id) and not on_engine(other, build.image_id)
    # Neither is the machine's build engine holding it: only the node's engine can be the source.
    with Engine.for_builds() as main:
        assert not main.image_exists(build.image_id)
    target = register(owner, other, name="other-node")
    with running_worker(tmp_path, queues=("celery",), concurrency=1) as worker, routed_to(worker):
        answer = owner_api.post("/api/v1/deployments/", {
            "image": "farm-deploy/app:1", "hosts": [target.pk], "name": "farm-app", "ports": {"8080/tcp": 8080},
        }, format="json")
        assert answer.status_code == 202, answer.json()
        deployment = Deployment.objects.get(pk=answer.json()["id"])
        wait_for(lambda: Deployment.objects.get(pk=deployment.pk).status in FINAL_STATUSES, timeout=120,
                 message="the deployment to finish")
    deployment.refresh_from_db()
    (deployed,) = deployment.targets.all()
    assert deployment.status == "succeeded", (deployed.error, worker.output()[-2000:])
    assert deployment.image_id == build.image_id
    try:
        assert on_engine(other, build.image_id)
        assert http_get(deployed.url) == "built on a farm node\n"
    finally:
        with other.engine() as engine, engine.errors("Cleaning up"):
            for container in engine.api.containers(all=True, filters={"label": "console.deployment.name=farm-app"}):
                engine.api.remove_container(container["Id"], force=True)


def test_it_moves_queued_builds_off_a_dead_node_and_fails_its_running_one(farm_nodes, owner, owner_api, staff_api):
    first, second = sorted(farm_nodes)
    doomed_node, doomed_host, doomed_worker = farm_nodes[first]
    # Only the first node takes builds: it runs one and holds the next in its queue.
    staff_api.post(f"/api/v1/build-nodes/{farm_nodes[second][0].pk}/drain/")
    repository = repositories.create_repository(owner, "doomed", "")
    long_source = source_from(repository, {"Dockerfile": f"FROM {BASE}\nRUN sleep 45\n"})
    short_source = source_from(repository, {"Dockerfile": f"FROM {BASE}\nRUN echo moved > /moved\n"})
    # On the classic builder, whose RUN is a container the node's engine lists (BuildKit's are not containers:
    # tests/builds/test_buildkit_builds.py checks that a lost worker leaves no BuildKit build running).
    running = start(owner, long_source, builder="classic")

    def container():
        # The engine's own list names the RUN's container (the worker reads no id from the build's text).
        listing = subprocess.run(["docker", "-H", doomed_host.socket_url, "ps", "-a", "--no-trunc", "--format",
                                  "{{.ID}} {{.Command}}"], capture_output=True, text=True).stdout.splitlines()
        return next((line.split()[0] for line in listing if "sleep 45" in line), "")

    container_id = wait_for(container, timeout=60, message="the long build's container")
    queued = start(owner, short_source)
    assert queued.node.name == first and queued.task_id and queued.status == "queued"
    staff_api.post(f"/api/v1/build-nodes/{farm_nodes[second][0].pk}/undrain/")
    queued.refresh_from_db()
    assert queued.node.name == first, "a placed build stays on its node while the node lives"

    doomed_worker.kill()
    lost = wait_for(lambda: nodes.check_nodes(stale_after=timedelta(seconds=3)), timeout=30,
                    message="the dead node to be marked down")
    assert lost == [first]
    assert BuildNode.objects.get(name=first).status == NodeStatus.DOWN
    running.refresh_from_db()
    assert running.status == "failed" and "was lost" in running.error and first in running.error
    # The engine outlived its worker: the lost build's container is gone from it.
    result = subprocess.run(["docker", "-H", doomed_host.socket_url, "inspect", container_id], capture_output=True)
    assert result.returncode != 0
    wait_for_build(queued, timeout=120)
    assert queued.status == "succeeded", queued.error
    assert queued.node.name == second
    assert any("is down: the build waits for another node" in line
               for line in owner_api.get(f"/api/v1/builds/{queued.pk}/log/").json()["lines"])

    rebuilt = owner_api.post(f"/api/v1/builds/{running.pk}/rebuild/").json()
    again = Build.objects.get(pk=rebuilt["id"])
    assert again.rebuild_of_id == running.pk and again.node.name == second
    wait_for_build(again, timeout=60, state={"running"})
    owner_api.post(f"/api/v1/builds/{again.pk}/cancel/")
    wait_for_build(again, timeout=30)
    assert again.status == "cancelled"
