"""The worker side of a build: claim it, stream the context to the engine, record steps and log as they come.

A watcher thread runs beside the engine's stream: it sends heartbeats, flushes buffered log lines, and when
the build is cancelled or over its timeout it kills the intermediate container, which ends the stream within
seconds even in the middle of a long `RUN`.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from builds.buildservice import engine_for, mask_secrets
from builds.constants import LABEL_BUILD_ID, LABEL_CREATED, LABEL_REVISION, LABEL_SOURCE, StepStatus
from builds.context import ContextError, stream_context
from builds.models import Build, BuildNode, BuildStep, Image
from builds.nodes import dispatch_waiting
from builds.options import parse_memory
from console import jobs
from console.constants import JobStatus
from console.engine import Engine, EngineError
from console.engine import build as engine_builds
from console.engine.build import BuildRequest, container_exists, kill_and_remove_container

log = logging.getLogger(__name__)

# Colour codes the engine puts around a step's stderr.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
LAYER_LINE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
RUNNING_LINE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
WATCH_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 5


class LogBuffer:
    """Log lines from the engine's stream, written at most every WATCH_INTERVAL (or at once when quiet)."""

    def __init__(self, build: Build, secrets: dict[str, str]) -> None:
        self.build = build
        self.secrets = secrets
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.last_flush = 0.0
        self.errors: set[str] = set()

    def error(self, message: str) -> None:
        self.errors.add(message)
        self.add(f"ERROR: {message}")

    def add(self, text: str) -> None:
        with self.lock:
            self.lines.extend(
                mask_secrets(clean, self.secrets)
                for line in text.splitlines()
                if (clean := ANSI_ESCAPE.sub("", line).rstrip())
            )
        if time.monotonic() - self.last_flush >= WATCH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
            self.last_flush = time.monotonic()
            if lines:
                jobs.append_log(self.build, lines)


class Watcher(threading.Thread):
    """Heartbeats, log flushes, and stopping the build on cancel or timeout."""

    def __init__(self, build: Build, logbuffer: LogBuffer, engine: Engine, deadline: float) -> None:
        super().__init__(daemon=True, name=f"build-{build.pk}-watcher")
        self.build, self.logbuffer, self.engine, self.deadline = build, logbuffer, engine, deadline
        self.stopping = threading.Event()
        self.reason: str | None = None
        self.current_container = ""

    def run(self) -> None:
        last_beat = 0.0
        try:
            while not self.stopping.wait(WATCH_INTERVAL):
                self.logbuffer.flush()
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_INTERVAL:
                    jobs.heartbeat(self.build)
                    last_beat = now
                if self.reason is None and jobs.cancel_requested(self.build):
                    self.stop_build("cancelled")
                elif self.reason is None and now > self.deadline:
                    self.stop_build("timeout")
        finally:
            connection.close()

    def stop_build(self, reason: str) -> None:
        self.reason = reason
        container = self.current_container
        if container:
            try:
                kill_and_remove_container(self.engine, container)
            except EngineError as exc:
                log.warning("Could not stop container %s of build %s: %s", container[:12], self.build.pk, exc)


class StepRecorder:
    """Turns the classic builder's `Step N/M`, `---> Running in`, `---> Using cache`, `---> <id>` lines into
    BuildStep rows, as they happen."""

    def __init__(self, build: Build, watcher: Watcher) -> None:
        self.build, self.watcher = build, watcher
        self.current: BuildStep | None = None
        self.last_layer = ""

    def feed(self, line: str) -> None:
        step = STEP_LINE.match(line)
        if step:
            self.finish_current(StepStatus.SUCCEEDED)
            number, total, instruction = int(step.group(1)), int(step.group(2)), step.group(3)
            if self.build.step_count != total:
                self.build.step_count = total
                Build.objects.filter(pk=self.build.pk).update(step_count=total)
            self.current = BuildStep.objects.create(
                build=self.build, number=number, instruction=mask_secrets(instruction, {}), started_at=timezone.now()
            )
            return
        if self.current is None:
            return
        if line.strip() == "---> Using cache":
            self.current.cached = True
            self.current.save(update_fields=["cached"])
            return
        running = RUNNING_LINE.match(line)
        if running:
            self.watcher.current_container = running.group(1)
            Build.objects.filter(pk=self.build.pk).update(current_container=running.group(1))
            return
        layer = LAYER_LINE.match(line)
        if layer:
            self.current.layer_id = layer.group(1)
            self.last_layer = layer.group(1)
            self.finish_current(StepStatus.SUCCEEDED)

    def finish_current(self, status: str) -> None:
        if self.current is None:
            return
        self.current.status = status
        self.current.finished_at = timezone.now()
        self.current.save(update_fields=["status", "finished_at", "layer_id"])
        if status == StepStatus.SUCCEEDED:
            self.watcher.current_container = ""
        self.current = None


def image_labels(build: Build) -> dict[str, str]:
    source = build.source
    labels = dict(build.labels)
    labels[LABEL_CREATED] = (build.started_at or timezone.now()).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels[LABEL_REVISION] = source.commit or f"sha256:{source.sha256}"
    if source.git_url:
        labels[LABEL_SOURCE] = source.git_url
    labels[LABEL_BUILD_ID] = str(build.pk)
    return labels


def run_build(build_id: int, worker: str = "") -> None:
    """Run one build to its end; every way out leaves it in a final status with the reason recorded."""
    build = Build.objects.select_related("source", "repository", "node").get(pk=build_id)
    if not claim(build):
        return
    Build.objects.filter(pk=build.pk).update(worker=worker or socket.gethostname())
    secrets = json.loads(build.secret_build_args) if build.secret_build_args else {}
    logbuffer = LogBuffer(build, secrets)
    try:
        status, error = _run(build, secrets, logbuffer)
    except Exception as exc:  # the build must end, whatever broke; the log keeps the reason
        log.exception("Build %s failed unexpectedly", build.pk)
        status, error = JobStatus.FAILED, f"The build failed unexpectedly: {exc}"
    if error and error not in logbuffer.errors:
        logbuffer.error(error)
    logbuffer.add({JobStatus.SUCCEEDED: "Build succeeded.", JobStatus.CANCELLED: "Build cancelled."}.get(status, ""))
    logbuffer.flush()
    jobs.finish(build, status, mask_secrets(error, secrets))
    Build.objects.filter(pk=build.pk).update(current_container="")
    close_old_connections()
    # A place on the node is free now, for this owner's next build or anyone's.
    dispatch_waiting()


def claim(build: Build) -> bool:
    """Claim a queued build for this worker, only while it is still placed where this worker runs.

    A build moved off a lost node may still be delivered from that node's queue when its worker comes back: the
    claim filters on the node, so it runs once, where it was placed last. A build with no node that reaches a
    node's worker (one also consuming the plain builds queue) is recorded on that node, so its image is found.
    """
    here = settings.BUILD_NODE_NAME
    if build.node_id is None:
        if here:
            node = BuildNode.objects.filter(name=here).first()
            if node is not None and Build.objects.filter(pk=build.pk, node=None).update(node=node):
                build.refresh_from_db()
                return claim(build)
        return jobs.claim(build)
    if here and build.node.name != here:
        log.warning("Build %s is placed on node %s, not on this node (%s): not running it here", build.pk,
                    build.node.name, here)
        return False
    now = timezone.now()
    won = Build.objects.filter(pk=build.pk, status=JobStatus.QUEUED, node=build.node_id).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now) == 1
    build.refresh_from_db()
    return won


def _run(build: Build, secrets: dict[str, str], logbuffer: LogBuffer) -> tuple[str, str]:
    timeout = build.timeout or settings.BUILD_DEFAULT_TIMEOUT
    # The node's registered engine, which the scheduler chose for its cache; it is the DOCKER_HOST its worker
    # registered, so the two differ only when a build with no node reaches a worker (then: the worker's engine).
    with engine_for(build, timeout=max(timeout, 60) + 30) as engine:
        watcher = Watcher(build, logbuffer, engine, deadline=time.monotonic() + timeout)
        steps = StepRecorder(build, watcher)
        build_args = {**build.build_args, **secrets}
        request = BuildRequest(
            context=stream_context(build.source, build.dockerfile, build.path),
            dockerfile=build.dockerfile,
            tag=build.tags[0] if build.tags else None,
            build_args=build_args,
            labels=image_labels(build),
            target=build.target,
            no_cache=build.no_cache,
            memory=parse_memory(build.memory_limit),
            cpu_shares=build.cpu_shares,
            cpuset_cpus=build.cpuset_cpus,
        )
        watcher.start()
        image_id, error = "", ""
        try:
            for message in build_messages(engine, request):
                if "stream" in message:
                    text = message["stream"]
                    logbuffer.add(text)
                    for line in text.splitlines():
                        steps.feed(line.rstrip())
                elif "aux" in message and isinstance(message["aux"], dict):
                    image_id = message["aux"].get("ID", image_id)
                elif "errorDetail" in message or "error" in message:
                    error = (message.get("errorDetail") or {}).get("message") or message.get("error", "")
                    logbuffer.error(error)
                elif "status" in message:
                    logbuffer.add(message["status"])
        except EngineError as exc:
            error = error or str(exc)
        finally:
            watcher.stopping.set()
            watcher.join(timeout=10)
        leftover = watcher.current_container
        if leftover and container_exists(engine, leftover):
            kill_and_remove_container(engine, leftover)

        if watcher.reason == "cancelled":
            steps.finish_current(StepStatus.CANCELLED)
            return JobStatus.CANCELLED, "Cancelled."
        if watcher.reason == "timeout":
            steps.finish_current(StepStatus.FAILED)
            _record_failure(engine, build, steps)
            return JobStatus.FAILED, f"The build took longer than its timeout of {timeout} seconds."
        if error or not image_id:
            steps.finish_current(StepStatus.FAILED)
            _record_failure(engine, build, steps)
            return JobStatus.FAILED, error or "The engine finished without an image."
        for tag in build.tags[1:]:
            engine_builds.tag_image(engine, image_id, tag)
        Build.objects.filter(pk=build.pk).update(image_id=image_id)
        record_image(build, engine, image_id)
        return JobStatus.SUCCEEDED, ""


def build_messages(engine: Engine, request: BuildRequest):
    try:
        yield from engine_builds.build(engine, request)
    except ContextError as exc:
        raise EngineError(f"The context cannot be made: {exc}") from exc


def _record_failure(engine: Engine, build: Build, steps: StepRecorder) -> None:
    failed = build.steps.filter(status__in=[StepStatus.FAILED, StepStatus.CANCELLED]).order_by("-number").first()
    last_good = steps.last_layer
    full = ""
    if last_good:
        try:
            full = engine_builds.full_image_id(engine, last_good)
        except EngineError:
            full = last_good
    Build.objects.filter(pk=build.pk).update(failed_step=failed.number if failed else None, last_good_layer=full)


def record_image(build: Build, engine: Engine, image_id: str) -> None:
    """Hook for the image records (builds/images.py) once they exist."""
    from builds import images

    image = images.record_built_image(build, engine, image_id)
    if build.node_id is not None:
        # Where the image lives: its push and analysis are routed to this node's queue (builds/nodes.route_task).
        Image.objects.filter(pk=image.pk).update(node=build.node_id)


def reap_lost_builds(older_than: timedelta | None = None) -> list[int]:
    """Fail running builds whose worker stopped sending heartbeats, and remove what they left on the engine."""
    if older_than is None:
        older_than = timedelta(seconds=settings.BUILD_HEARTBEAT_TIMEOUT)
    reaped = []
    for build in jobs.stale_jobs(Build, older_than).select_related("owner"):
        if not jobs.finish(build, JobStatus.FAILED, "The worker running this build was lost (no heartbeat)."):
            continue
        reaped.append(build.pk)
        jobs.append_log(build, ["ERROR: The worker running this build was lost (no heartbeat)."])
        if build.current_container:
            try:
                with engine_for(build) as engine:
                    kill_and_remove_container(engine, build.current_container)
            except EngineError as exc:
                log.warning("Could not remove container %s of lost build %s: %s",
                            build.current_container[:12], build.pk, exc)
    if reaped:
        dispatch_waiting()
    return reaped
