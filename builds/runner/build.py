"""The worker side of a build: claim it, stream the context to the engine, record steps and log as they come.

A watcher thread runs beside the engine's stream: it sends heartbeats, flushes buffered log lines, and when
the build is cancelled or over its timeout it aborts the stream (closes the connection), upon which the engine
kills and removes the running step's container itself: within a second even in the middle of a long `RUN`.

Nothing the build prints is control data. A RUN step can print anything, `Step 9/9 : ...`, ` ---> Running in
<id>`, ` ---> <id>` included, so the text stream only feeds the log and the step rows shown to the user (a `Step`
line is taken only as the next step, of the instruction the Dockerfile has there). The image id comes from the
stream's `aux` record; the steps' layer ids from the final image's history, as the engine reports it; the last
good layer of a failed build from a second build of the Dockerfile cut before the failed step, served by the
engine's cache, whose `aux` record names it.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from builds import access
from builds.constants import LABEL_BUILD_ID, LABEL_CREATED, LABEL_REVISION, LABEL_SOURCE, Builder, StepStatus
from builds.models import Build, BuildNode, Image
from builds.runner.buildkit import buildkit_unavailable, link_steps_to_layers, recorded_builder, run_buildkit
from builds.runner.dockerfile import dockerfile_with_ids, read_dockerfile, replace_dockerfile
from builds.runner.last_good_layer import record_failure
from builds.runner.progress import BUILD_WORKER_LOST, LogBuffer, Watcher, stopped_outcome
from builds.runner.steps import StepRecorder, plan_for, record_layers
from builds.services import images
from builds.services.analysis import request_analysis_by_id
from builds.services.builds import engine_for, mask_secrets
from builds.services.nodes import dispatch_waiting
from builds.services.options import build_memory
from builds.sources.context import ContextError, stream_context
from console import jobs
from console.constants import JobStatus
from console.engine import Engine, EngineError
from console.engine import build as engine_builds
from console.engine.build import BuildRequest, BuildStream

log = logging.getLogger(__name__)



def image_labels(build: Build) -> dict[str, str]:
    source = build.source
    labels = dict(build.labels)
    labels[LABEL_CREATED] = (build.started_at or timezone.now()).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels[LABEL_REVISION] = source.commit or f"sha256:{source.sha256}"
    if source.git_url:
        labels[LABEL_SOURCE] = source.git_url
    labels[LABEL_BUILD_ID] = str(build.pk)
    return labels


class BuildRunner(jobs.JobRunner):
    """A build as a job: claimed only where it is placed, its log masked of its secrets, the next build handed
    out once it ends."""

    model = Build
    related = ("source", "repository", "node")

    def __init__(self, worker: str = "") -> None:
        self.worker = worker
        # Every value to mask: the build's secrets and, for a build from before them, its secret build args.
        self.secrets: dict[str, str] = {}
        self.logbuffer: LogBuffer | None = None

    def load(self, job_id: int) -> Build | None:
        build = super().load(job_id)
        if build is not None:
            self.secrets = {**(json.loads(build.secret_build_args) if build.secret_build_args else {}),
                            **(json.loads(build.secrets) if build.secrets else {})}
            self.logbuffer = LogBuffer(build, self.secrets)
        return build

    def claim(self, job: Build) -> bool:
        return claim(job)

    def work(self, job: Build) -> tuple[str, str]:
        Build.objects.filter(pk=job.pk).update(worker=self.worker or socket.gethostname())
        return _run(job, self.logbuffer)

    def unexpected(self, job: Build, exc: Exception) -> str:
        return f"The build failed unexpectedly: {exc}"

    def log(self, job: Build, lines: list[str]) -> None:
        self.logbuffer.add("\n".join(lines))

    def conclude(self, job: Build, status: str, error: str) -> None:
        if error and error not in self.logbuffer.errors:
            self.logbuffer.error(error)
        self.logbuffer.add({JobStatus.SUCCEEDED: "Build succeeded.", JobStatus.CANCELLED: "Build cancelled."}.get(
            status, ""))
        self.logbuffer.flush()

    def public_error(self, job: Build, error: str) -> str:
        return mask_secrets(error, self.secrets)

    def finished(self, job: Build, status: str) -> None:
        close_old_connections()
        # A place on the node is free now, for this owner's next build or anyone's.
        dispatch_waiting()
        if status == JobStatus.SUCCEEDED:
            # Asked for once the build is finished: reading the whole image is not part of the build's time.
            for image_pk in Image.objects.filter(build=job).values_list("pk", flat=True):
                request_analysis_by_id(image_pk)


def run_build(build_id: int, worker: str = "") -> None:
    """Run one build to its end; every way out leaves it in a final status with the reason recorded."""
    BuildRunner(worker).run(build_id)


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


def _run(build: Build, logbuffer: LogBuffer) -> tuple[str, str]:
    timeout = build.timeout or settings.BUILD_DEFAULT_TIMEOUT
    # The node's registered engine, which the scheduler chose for its cache; it is the DOCKER_HOST its worker
    # registered, so the two differ only when a build with no node reaches a worker (then: the worker's engine).
    with engine_for(build, timeout=max(timeout, 60) + 30) as engine:
        if build.builder == Builder.BUILDKIT and (reason := buildkit_unavailable(engine)):
            if build.secret_names:
                return JobStatus.FAILED, f"The build's secrets need BuildKit, and {reason}."
            recorded_builder(build, Builder.CLASSIC, reason)
            logbuffer.add(f"NOTE: the classic builder runs this build: {reason}.")
        labels = image_labels(build)
        dockerfile_text = read_dockerfile(build)
        if build.builder == Builder.BUILDKIT:
            build_secrets = json.loads(build.secrets) if build.secrets else {}
            status, error, image_id = run_buildkit(build, engine, build_secrets, logbuffer, dockerfile_text, labels,
                                                   timeout)
            if status == JobStatus.SUCCEEDED:
                Build.objects.filter(pk=build.pk).update(image_id=image_id)
                image = record_image(build, engine, image_id)
                link_steps_to_layers(build, image)
            return status, error
        if not build.builder:
            recorded_builder(build, Builder.CLASSIC, "queued before builds ran on BuildKit")
        # The classic builder: a build from before secrets passes its secret build args, as it did then.
        old_secret_args = json.loads(build.secret_build_args) if build.secret_build_args else {}
        build_args = {**{name: value for name, value in build.build_args.items() if name not in build.secret_names},
                      **old_secret_args}
        plan = plan_for(build, dockerfile_text, build_args, labels)
        # The engine gets a Dockerfile naming the ids of the images the owner may use, never a name it would
        # resolve itself on a shared engine (builds/access.py).
        try:
            sent_text, shown = dockerfile_with_ids(engine, build, dockerfile_text, build_args, plan)
        except access.ImageAccessError as exc:
            return JobStatus.FAILED, str(exc)
        steps = StepRecorder(build, plan, shown)
        replace, dockerfile_name = ({}, build.dockerfile) if sent_text == dockerfile_text else replace_dockerfile(
            build, (sent_text or "").encode("utf-8"))
        request = BuildRequest(
            context=stream_context(build.source, build.dockerfile, build.path, replace=replace or None),
            dockerfile=dockerfile_name,
            tag=access.engine_name(build.owner, build.tags[0]) if build.tags else None,
            build_args=build_args,
            labels=labels,
            target=build.target,
            no_cache=build.no_cache,
            memory=build_memory(build.memory_limit),
            cpu_shares=build.cpu_shares,
            cpuset_cpus=build.cpuset_cpus,
        )
        stream = engine_builds.build(engine, request)
        watcher = Watcher(build, logbuffer, stream, deadline=time.monotonic() + timeout)
        watcher.start()
        image_id, error = "", ""
        try:
            for message in build_messages(stream):
                if "stream" in message:
                    # A step's line names the images as the user did (the engine was sent their ids).
                    logbuffer.add("\n".join(steps.feed(line.rstrip()) for line in message["stream"].splitlines()))
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
            # Whatever ended the loop (an error here included), the engine stops what it still runs once the
            # connection is gone.
            stream.abort()

        if outcome := stopped_outcome(watcher.reason, timeout):
            steps.finish_current(outcome[1])
            if watcher.reason == "timeout":
                record_failure(engine, build, request, sent_text, steps.plan)
            return outcome[0], outcome[2]
        if error or not image_id:
            steps.finish_current(StepStatus.FAILED)
            record_failure(engine, build, request, sent_text, steps.plan)
            return JobStatus.FAILED, error or "The engine finished without an image."
        steps.finish_current(StepStatus.SUCCEEDED)
        for tag in build.tags[1:]:
            engine_builds.tag_image(engine, image_id, access.engine_name(build.owner, tag))
        Build.objects.filter(pk=build.pk).update(image_id=image_id)
        record_layers(engine, build, steps.plan, image_id)
        record_image(build, engine, image_id)
        return JobStatus.SUCCEEDED, ""


def build_messages(stream: BuildStream):
    try:
        yield from stream
    except ContextError as exc:
        raise EngineError(f"The context cannot be made: {exc}") from exc


def record_image(build: Build, engine: Engine, image_id: str) -> Image:
    """Hook for the image records (builds/services/images.py) once they exist."""
    image = images.record_built_image(build, engine, image_id, analyse=False)
    if build.node_id is not None:
        # Where the image lives: its push and analysis are routed to this node's queue (builds/nodes.route_task).
        Image.objects.filter(pk=image.pk).update(node=build.node_id)
    return image


def reap_lost_builds(older_than: timedelta | None = None) -> list[int]:
    """Fail running builds whose worker stopped sending heartbeats.

    Nothing is left to remove on the engine: a worker that died closed its connection, and the engine stops a
    build whose client went away, killing and removing the running step's container. A worker that lives on
    (but could not reach the database) aborts its build on its next look at it (Watcher)."""
    if older_than is None:
        older_than = timedelta(seconds=settings.BUILD_HEARTBEAT_TIMEOUT)
    reaped = [build.pk for build in jobs.reap_lost(Build, older_than, BUILD_WORKER_LOST,
                                                   log_line=f"ERROR: {BUILD_WORKER_LOST}")]
    if reaped:
        dispatch_waiting()
    return reaped
