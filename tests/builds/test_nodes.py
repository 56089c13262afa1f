"""Build nodes without workers: registration against the real engine, placement, lost nodes, routing, the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from builds.constants import NodeStatus
from builds.models import Build, BuildNode, Image, SharedImage
from builds.services import builds as buildservice
from builds.services import nodes, repositories
from builds.services.builds import BuildOptions, trigger_build
from console.constants import JobStatus
from console.engine import Engine
from tests.builds.build_helpers import source_from

URL = "/api/v1/build-nodes/"
BASE = "busybox:1.35.0"


@pytest.fixture
def sent(monkeypatch):
    """The build tasks handed to the broker, with their queue: no worker is needed to see where builds go."""
    from builds.tasks import run_build

    calls: list[tuple[int, str | None]] = []

    class Result:
        id = "task-id"

    def apply_async(args, queue=None, **kwargs):
        calls.append((args[0], queue))
        return Result()

    monkeypatch.setattr(run_build, "apply_async", apply_async)
    return calls


def make_node(name: str, **fields) -> BuildNode:
    values = {"engine_url": f"tcp://{name}:2375", "queue": f"builds.{name}", "capacity": 2, "engine_ok": True,
              "heartbeat_at": timezone.now(), "base_images": [BASE], **fields}
    return BuildNode.objects.create(name=name, **values)


@pytest.fixture
def staff_api(db):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("root", "root@example.com", "x", is_staff=True))
    return client


def trigger(owner, source, captured) -> Build:
    with captured(execute=True):
        build = trigger_build(owner, source, BuildOptions())
    build.refresh_from_db()
    return build


# -- what a build needs ----------------------------------------------------------------------------------------


def test_it_reads_the_base_images_of_a_dockerfile():
    text = ("ARG V=1\nFROM busybox:1.35.0 AS base\nFROM base AS test\nFROM --platform=linux/amd64 debian\n"
            "FROM scratch\nFROM registry:5000/team/app@sha256:abc\nFROM img:$V\nFROM busybox:1.35.0\n")
    assert nodes.base_images_of(text) == ["busybox:1.35.0", "debian:latest", "registry:5000/team/app@sha256:abc"]


# -- registration and heartbeats ---------------------------------------------------------------------------------


@pytest.mark.engine
def test_it_registers_a_node_with_what_its_real_engine_holds(db, settings):
    settings.BUILD_NODE_NAME = "local"
    with Engine.for_builds() as engine:
        url = engine.url
    identity = nodes.identity_from_worker(["celery", "builds.local-1a2b"], 3, "w@host")
    assert (identity.queue, identity.capacity, identity.engine_url) == ("builds.local-1a2b", 3, url)
    node = nodes.send_heartbeat(identity)
    assert node.engine_ok and node.status == NodeStatus.UP and buildservice.is_available(node)
    assert BASE in node.base_images
    assert node.free_disk > 0 and node.load is not None and node.running_builds == 0
    # A node that was marked down comes back with its next heartbeat.
    BuildNode.objects.filter(pk=node.pk).update(status=NodeStatus.DOWN)
    assert nodes.send_heartbeat(identity).status == NodeStatus.UP
    assert BuildNode.objects.count() == 1


def test_it_records_an_engine_that_does_not_answer(db, settings, tmp_path):
    settings.BUILD_NODE_NAME = "broken"
    settings.BUILD_NODE_CAPACITY = 4
    settings.DOCKER_HOST = f"unix://{tmp_path}/nothing.sock"
    node = nodes.send_heartbeat(nodes.identity_from_worker([], 1, "w@host"))
    assert node.capacity == 4 and node.queue == "builds.broken"
    assert node.engine_ok is False and "does not answer" in node.engine_error
    assert not buildservice.is_available(node)


def test_a_worker_without_a_node_name_is_no_node(settings):
    settings.BUILD_NODE_NAME = ""
    assert nodes.identity_from_worker(["builds"], 2, "w@host") is None


# -- placement -------------------------------------------------------------------------------------------------


def test_without_nodes_builds_go_to_the_plain_builds_queue(owner, repository, sent, django_capture_on_commit_callbacks):
    source = source_from(repository, {"Dockerfile": f"FROM {BASE}\n"})
    build = trigger(owner, source, django_capture_on_commit_callbacks)
    assert sent == [(build.pk, None)]
    assert build.node is None and build.task_id == "task-id"


def test_it_prefers_the_repositorys_last_node_then_the_base_image_then_the_least_loaded(
        owner, repository, sent, django_capture_on_commit_callbacks, settings):
    settings.BUILDS_PER_USER = 10
    a, b = make_node("a"), make_node("b", base_images=[])
    source = source_from(repository, {"Dockerfile": f"FROM {BASE}\n"})
    first = trigger(owner, source, django_capture_on_commit_callbacks)
    # Only `a` holds busybox:1.35.0.
    assert first.node == a and sent[-1] == (first.pk, "builds.a")
    Build.objects.filter(pk=first.pk).update(status=JobStatus.SUCCEEDED)
    BuildNode.objects.filter(pk=b.pk).update(base_images=[BASE])
    # Both hold the base now and neither is busy: the repository's last node wins.
    BuildNode.objects.filter(pk=a.pk).update(name="z")
    assert trigger(owner, source, django_capture_on_commit_callbacks).node == a
    # An operator shared debian:12 (builds/access.py): any user may build FROM it.
    SharedImage.objects.create(reference="debian:12")
    other = source_from(repository, {"Dockerfile": "FROM debian:12\n"})
    # Another Dockerfile of the same repository (its base on neither node): the affinity holds while `a` has room.
    assert trigger(owner, other, django_capture_on_commit_callbacks).node == a
    # `a` is full (2 of 2): the next waits for it (its cache) while `b` idles, for BUILD_AFFINITY_WAIT seconds...
    held = trigger(owner, other, django_capture_on_commit_callbacks)
    assert held.node is None and held.task_id == ""
    # ... while a build of another repository goes to `b` before it.
    newcomer = repositories.create_repository(owner, "newcomer", "")
    assert trigger(owner, source_from(newcomer, {"Dockerfile": f"FROM {BASE}\n"}),
                   django_capture_on_commit_callbacks).node == b
    # Once it has waited long enough, it takes a place elsewhere.
    settings.BUILD_AFFINITY_WAIT = 0
    with django_capture_on_commit_callbacks(execute=True):
        nodes.dispatch_waiting()
    held.refresh_from_db()
    assert held.node == b and sent[-1] == (held.pk, "builds.b")


def test_a_drained_down_stale_unhealthy_or_full_node_gets_nothing(
        owner, repository, sent, django_capture_on_commit_callbacks, settings):
    settings.BUILDS_PER_USER = 10
    make_node("drained", drained=True)
    make_node("down", status=NodeStatus.DOWN)
    make_node("stale", heartbeat_at=timezone.now() - timedelta(minutes=5))
    make_node("sick", engine_ok=False)
    room = make_node("room", capacity=1)
    source = source_from(repository, {"Dockerfile": f"FROM {BASE}\n"})
    placed = trigger(owner, source, django_capture_on_commit_callbacks)
    assert placed.node == room
    waiting = trigger(owner, source, django_capture_on_commit_callbacks)
    # No node has room: the build waits in the owner's queue, and nothing was sent for it.
    assert waiting.node is None and waiting.task_id == "" and waiting.status == "queued"
    assert [build_id for build_id, _ in sent] == [placed.pk]
    # A place frees up: the dispatcher of any owner's waiting builds hands it out.
    Build.objects.filter(pk=placed.pk).update(status=JobStatus.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        nodes.dispatch_waiting()
    waiting.refresh_from_db()
    assert waiting.node == room and sent[-1] == (waiting.pk, "builds.room")


# -- lost nodes --------------------------------------------------------------------------------------------------


def test_a_node_without_heartbeats_is_marked_down_and_its_builds_move_or_fail(
        owner, repository, sent, django_capture_on_commit_callbacks, settings):
    settings.BUILDS_PER_USER = 10
    lost, alive = make_node("lost", capacity=5), make_node("alive", base_images=[])
    source = source_from(repository, {"Dockerfile": f"FROM {BASE}\n"})
    running, queued = (trigger(owner, source, django_capture_on_commit_callbacks) for _ in range(2))
    assert running.node == queued.node == lost
    Build.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    BuildNode.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert nodes.check_nodes() == ["lost"]
    assert nodes.check_nodes() == []
    assert BuildNode.objects.get(pk=lost.pk).status == NodeStatus.DOWN
    assert BuildNode.objects.get(pk=alive.pk).status == NodeStatus.UP
    running.refresh_from_db()
    queued.refresh_from_db()
    assert running.status == "failed" and "The build node lost was lost" in running.error
    assert queued.status == "queued" and queued.node == alive and sent[-1] == (queued.pk, "builds.alive")


# -- routing ---------------------------------------------------------------------------------------------------


@pytest.mark.engine
def test_the_analysis_and_the_push_of_an_image_go_to_its_nodes_queue(owner, repository):
    from registry import routing
    from registry.models import Push, RegistryAccount

    node = make_node("holder")
    image = Image.objects.create(owner=owner, image_id="sha256:" + "a" * 64, tags=["team/app:1"], node=node)
    elsewhere = Image.objects.create(owner=owner, image_id="sha256:" + "b" * 64)
    assert nodes.route_task("builds.analyse_image", [image.pk], {}, {}) == {"queue": "builds.holder"}
    assert nodes.route_task("builds.analyse_image", [elsewhere.pk], {}, {}) is None
    assert nodes.route_task("builds.run_build", [1], {}, {}) is None
    account = RegistryAccount.objects.create(owner=owner, name="hub", kind="generic",
                                             url="https://registry.example.com")
    for reference in ("team/app:1", image.image_id):
        push = Push.objects.create(owner=owner, registry=account, image=reference, repository="team/app")
        assert routing.route_task("registry.run_push", [push.pk], {}, {}) == {"queue": "builds.holder"}
        assert nodes.route_task("registry.run_push", [push.pk], {}, {}) is None


# -- the API -----------------------------------------------------------------------------------------------------


def test_staff_list_nodes_with_their_running_builds(staff_api, owner, repository):
    node = make_node("n1", free_disk=123, load=0.5)
    source = source_from(repository, {"Dockerfile": f"FROM {BASE}\n"})
    Build.objects.create(owner=owner, repository=repository, source=source, node=node, status=JobStatus.RUNNING)
    Build.objects.create(owner=owner, repository=repository, source=source, node=node, task_id="t")
    body = staff_api.get(URL).json()["results"]
    assert body == [{
        "id": node.pk, "name": "n1", "engine_url": "tcp://n1:2375", "queue": "builds.n1", "worker": "",
        "status": "up", "drained": False, "available": True, "capacity": 2, "running_builds": 1,
        "assigned_builds": 1, "engine_ok": True, "engine_error": "", "load": 0.5, "free_disk": 123,
        "base_images": [BASE], "registered_at": body[0]["registered_at"], "heartbeat_at": body[0]["heartbeat_at"],
    }]
    assert staff_api.get(f"{URL}{node.pk}/").json()["name"] == "n1"


def test_the_node_list_is_newest_first_not_by_name(staff_api):
    make_node("alpha")
    make_node("zeta")
    assert [item["name"] for item in staff_api.get(URL).json()["results"]] == ["zeta", "alpha"]


def test_only_staff_see_nodes(owner_api, api_client, db):
    node = make_node("n1")
    assert owner_api.get(URL).status_code == 403
    assert owner_api.post(f"{URL}{node.pk}/drain/").status_code == 403
    assert api_client.get(URL).status_code == 401
    assert BuildNode.objects.get(pk=node.pk).drained is False


def test_staff_drain_and_undrain_a_node(staff_api):
    node = make_node("n1")
    response = staff_api.post(f"{URL}{node.pk}/drain/")
    assert response.status_code == 200 and response.json()["drained"] is True
    assert response.json()["available"] is False
    assert BuildNode.objects.get(pk=node.pk).drained is True
    assert staff_api.post(f"{URL}{node.pk}/undrain/").json()["drained"] is False
    assert BuildNode.objects.get(pk=node.pk).drained is False


def test_node_endpoints_refuse_wrong_methods_and_unknown_nodes(staff_api):
    node = make_node("n1")
    assert staff_api.get(f"{URL}{node.pk}/drain/").status_code == 405
    assert staff_api.delete(f"{URL}{node.pk}/").status_code == 405
    assert staff_api.post(URL, {"name": "x"}, format="json").status_code == 405
    assert staff_api.post(f"{URL}999999/drain/").status_code == 404
    assert BuildNode.objects.count() == 1
