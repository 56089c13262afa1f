"""The build farm: build nodes register and send heartbeats, builds are placed on them, lost nodes are handled.

A build node is one Docker Engine plus the Celery worker bound to it (its DOCKER_HOST), consuming its own queue
`builds.<node>`. The worker registers the node when it starts (BUILD_NODE_NAME set) and a thread in the worker's
main process sends a heartbeat every BUILD_NODE_HEARTBEAT_INTERVAL seconds. With no node registered the console
is the single-engine default: builds go to the plain `builds` queue and run on `Engine.for_builds()`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from builds import dockerfile
from builds.constants import LABEL_BUILD_ID, NODE_LOST_ERROR, NodeStatus
from builds.models import Build, BuildNode, Dispatch, Image, ImageAnalysis
from builds.services.analysis import ANALYSE_IMAGE_TASK, RUN_ANALYSIS_TASK
from builds.services.builds import dispatch_queued
from console import jobs, references
from console.constants import JobStatus
from console.engine import Engine, EngineError
from console.engine.nodes import engine_facts

log = logging.getLogger(__name__)

# -- what a build needs ---------------------------------------------------------------------------------------


def base_images_of(dockerfile_text: str) -> list[str]:
    """The images a Dockerfile builds FROM, as name:tag, leaving out its own stages, scratch and ARG-made names."""
    images: list[str] = []
    for use in dockerfile.parse(dockerfile_text).image_uses:
        # A name made from an ARG depends on the build's arguments: no node can be chosen for it in advance.
        if use.how != "FROM" or "$" in use.written:
            continue
        repository, _ = references.split(use.reference)
        # The engine reads a name without a tag or digest as `:latest`.
        tagged = "@" in use.reference or repository != use.reference
        reference = use.reference if tagged else f"{use.reference}:{references.DEFAULT_TAG}"
        if reference not in images:
            images.append(reference)
    return images


# -- registration and heartbeats (the worker's side) ----------------------------------------------------------


@dataclass
class NodeIdentity:
    """Who this worker is in the farm: read from its environment and its Celery start-up."""

    name: str
    engine_url: str
    queue: str
    capacity: int
    worker: str


def identity_from_worker(consumed_queues: list[str], concurrency: int, hostname: str) -> NodeIdentity | None:
    """The node this worker stands for, or None when BUILD_NODE_NAME is not set (the single-engine default).

    The node's queue is BUILD_NODE_QUEUE, else the queue the worker consumes whose name starts with
    `builds.<name>`, else `builds.<name>`.
    """
    name = settings.BUILD_NODE_NAME
    if not name:
        return None
    queue = settings.BUILD_NODE_QUEUE or next(
        (q for q in consumed_queues if q == f"builds.{name}" or q.startswith(f"builds.{name}-")), f"builds.{name}"
    )
    engine_url = settings.DOCKER_HOST or Engine.for_builds().url
    capacity = settings.BUILD_NODE_CAPACITY or max(1, concurrency)
    return NodeIdentity(name, engine_url, queue, capacity, hostname or socket.gethostname())


def send_heartbeat(identity: NodeIdentity) -> BuildNode:
    """Register or refresh the node: engine health, running builds, load, free disk, the images it holds."""
    engine_ok, engine_error, free_disk, images = False, "", None, []
    try:
        with Engine(identity.engine_url, timeout=settings.HEALTH_TIMEOUT) as engine:
            facts = engine_facts(engine, LABEL_BUILD_ID)
        engine_ok, free_disk, images = True, facts.free_disk, facts.base_images
    except EngineError as exc:
        engine_error = str(exc)
    node, created = BuildNode.objects.update_or_create(
        name=identity.name,
        defaults={
            "engine_url": identity.engine_url, "queue": identity.queue, "capacity": identity.capacity,
            "worker": identity.worker, "status": NodeStatus.UP, "engine_ok": engine_ok,
            "engine_error": engine_error[:2000], "load": os.getloadavg()[0], "free_disk": free_disk,
            "base_images": images, "heartbeat_at": timezone.now(),
            "running_builds": Build.objects.filter(node__name=identity.name, status=JobStatus.RUNNING).count(),
        },
    )
    return node


class NodeAgent(threading.Thread):
    """The heartbeat thread of a node's worker; the first beat registers the node and hands it waiting builds."""

    def __init__(self, identity: NodeIdentity) -> None:
        super().__init__(daemon=True, name=f"build-node-{identity.name}")
        self.identity = identity
        self.stopping = threading.Event()

    def beat(self) -> None:
        try:
            node = send_heartbeat(self.identity)
            if node.engine_ok and not node.drained:
                dispatch_waiting()
        except Exception:  # a database or broker hiccup: the next beat tries again
            log.exception("The heartbeat of build node %s failed", self.identity.name)
        finally:
            close_old_connections()

    def run(self) -> None:
        try:
            while not self.stopping.wait(settings.BUILD_NODE_HEARTBEAT_INTERVAL):
                self.beat()
        finally:
            connection.close()


_agent: NodeAgent | None = None


def start_agent(identity: NodeIdentity) -> NodeAgent:
    global _agent
    agent = NodeAgent(identity)
    agent.beat()
    agent.start()
    _agent = agent
    log.info("Build node %s registered: engine %s, queue %s, capacity %s", identity.name, identity.engine_url,
             identity.queue, identity.capacity)
    return agent


def stop_agent() -> None:
    """On a clean stop the worker has finished its builds: the node is down now, its queued builds move on."""
    global _agent
    if _agent is None:
        return
    _agent.stopping.set()
    _agent.join(timeout=5)
    node = BuildNode.objects.filter(name=_agent.identity.name).first()
    _agent = None
    if node is not None:
        mark_down(node, reason="stopped")
    connection.close()


# -- handing out waiting builds (the choice of a node is builds/services/builds.py's) ------------------------


def dispatch_waiting() -> None:
    """Hand waiting builds of every owner to nodes with room (a node came up, or one of its builds ended)."""
    owners = (Build.objects.waiting().values("owner")
              .annotate(first=Min("queued_at")).order_by("first").values_list("owner", flat=True))
    for owner in get_user_model().objects.filter(pk__in=list(owners)):
        dispatch_queued(owner)


# -- lost nodes -------------------------------------------------------------------------------------------------


def mark_down(node: BuildNode, reason: str = "lost") -> bool:
    """Mark an up node down: its queued builds wait for another node, its running builds fail as "node lost"."""
    if BuildNode.objects.filter(pk=node.pk, status=NodeStatus.UP).update(status=NodeStatus.DOWN) != 1:
        return False
    log.warning("Build node %s is down (%s)", node.name, reason)
    moved = list(Build.objects.filter(node=node, status=JobStatus.QUEUED))
    for build in moved:
        # The claim checks the node, so a late delivery from the dead node's queue cannot start it there.
        if Build.objects.filter(pk=build.pk, node=node, status=JobStatus.QUEUED).update(node=None,
                                                                                         task_id=Dispatch.WAITING):
            jobs.append_log(build, [f"The build node {node.name} is down: the build waits for another node."])
    if reason == "lost":
        for build in Build.objects.filter(node=node, status=JobStatus.RUNNING):
            fail_lost_build(build, node)
    dispatch_waiting()
    return True


def fail_lost_build(build: Build, node: BuildNode) -> None:
    error = NODE_LOST_ERROR.format(node=node.name)
    if not jobs.finish(build, JobStatus.FAILED, error):
        return
    # Nothing to remove from the node's engine: the dead worker's connection closed, and the engine stops a build
    # whose client went away, with its running step's container (builds/runner/, BuildStream).
    jobs.append_log(build, [f"ERROR: {error}"])


def check_nodes(stale_after: timedelta | None = None) -> list[str]:
    """Mark down the nodes whose worker stopped sending heartbeats; then hand waiting builds out (periodic)."""
    if stale_after is None:
        stale_after = timedelta(seconds=settings.BUILD_NODE_TIMEOUT)
    cutoff = timezone.now() - stale_after
    lost = []
    for node in BuildNode.objects.filter(status=NodeStatus.UP).filter(
            Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)):
        if mark_down(node):
            lost.append(node.name)
    dispatch_waiting()
    return lost


def set_drained(node: BuildNode, drained: bool) -> BuildNode:
    """A drained node finishes what it runs and what it was handed, and gets nothing new."""
    BuildNode.objects.filter(pk=node.pk).update(drained=drained)
    node.refresh_from_db()
    if not drained:
        transaction.on_commit(dispatch_waiting)
    return node


# -- where the work about an image runs ---------------------------------------------------------------------


def queue_for_image(owner_id: int, reference: str) -> str | None:
    """The queue of the node that holds an image (by record id, engine id or tag), None off the farm."""
    images = Image.objects.filter(owner=owner_id).filter(
        Q(image_id=reference) | Q(image_id=f"sha256:{reference}") | Q(tags__contains=[reference]))
    row = images.exclude(node=None).values_list("node__queue", flat=True).first()
    if row:
        return row
    return images.exclude(build__node=None).values_list("build__node__queue", flat=True).first()


def route_task(name, args, kwargs, options, task=None, **kw) -> dict | None:
    """Celery router (CELERY_TASK_ROUTES): an image's analysis runs on the queue of the node whose engine holds
    the image (registry/routing.py routes its pushes the same way). None leaves the task to the other routes."""
    try:
        if name == RUN_ANALYSIS_TASK and args:
            image = ImageAnalysis.objects.filter(pk=args[0]).values_list(
                "image__node__queue", "image__build__node__queue").first()
        elif name == ANALYSE_IMAGE_TASK and args:
            image = Image.objects.filter(pk=args[0]).values_list("node__queue", "build__node__queue").first()
        else:
            return None
    except Exception:  # routing must never stop a send: the default queue is the fallback
        log.exception("Could not route %s", name)
        return None
    queue = image and (image[0] or image[1])
    return {"queue": queue} if queue else None


def nodes_for_listing():
    """Nodes with the builds they are running, for the admin's list."""
    return BuildNode.objects.annotate(
        running=Count("builds", filter=Q(builds__status=JobStatus.RUNNING)),
        assigned=Count("builds", filter=Dispatch.handed_out_q("builds__")),
    ).order_by("name")
