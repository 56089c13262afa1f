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

import dataclasses
import json
import logging
import posixpath
import re
import secrets as tokens
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from builds import access, images
from builds import dockerfile as dockerfiles
from builds.buildservice import engine_for, mask_secrets
from builds.constants import LABEL_BUILD_ID, LABEL_CREATED, LABEL_REVISION, LABEL_SOURCE, StepStatus
from builds.models import Build, BuildNode, BuildStep, Image
from builds.nodes import dispatch_waiting
from builds.options import build_memory
from builds.sources.context import ContextError, plan_dockerfile_text, stream_context
from builds.sources.dockerignore import DockerIgnore, DockerIgnoreError, dropped_by_engine
from console import jobs
from console.constants import JobStatus
from console.engine import Engine, EngineError
from console.engine import build as engine_builds
from console.engine.build import BuildRequest, BuildStream
from console.engine.images import image_history

log = logging.getLogger(__name__)

# Colour codes the engine puts around a step's stderr.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
WATCH_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 5
# The build of the Dockerfile cut before a failed step is served from the cache in well under a second; a step
# the cache cannot serve is run again, for at most this long, after which the build has no last good layer.
CUT_BUILD_TIMEOUT = 60
# The name the cut Dockerfile travels under when it cannot replace the Dockerfile itself (see _cut_context).
CUT_DOCKERFILE_PREFIX = ".console-cut-dockerfile."
# Layer ids as the steps keep them (the classic builder's short form); builds/images.py matches on these.
SHORT_ID = 12
BUILD_WORKER_LOST = "The worker running this build was lost (no heartbeat)."


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

    def __init__(self, build: Build, logbuffer: LogBuffer, stream: BuildStream, deadline: float) -> None:
        super().__init__(daemon=True, name=f"build-{build.pk}-watcher")
        self.build, self.logbuffer, self.stream, self.deadline = build, logbuffer, stream, deadline
        self.stopping = threading.Event()
        self.reason: str | None = None

    def run(self) -> None:
        last_beat = 0.0
        try:
            while not self.stopping.wait(WATCH_INTERVAL):
                self.logbuffer.flush()
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_INTERVAL:
                    jobs.heartbeat(self.build)
                    last_beat = now
                    if self.reason is None and not Build.objects.filter(
                            pk=self.build.pk, status=JobStatus.RUNNING).exists():
                        # Reaped as lost (this worker was silent too long): stop what the engine still runs.
                        self.stop_build("lost")
                if self.reason is None and jobs.cancel_requested(self.build):
                    self.stop_build("cancelled")
                elif self.reason is None and now > self.deadline:
                    self.stop_build("timeout")
        finally:
            connection.close()

    def stop_build(self, reason: str) -> None:
        # Closing the connection is enough: the engine kills and removes the running step's container.
        self.reason = reason
        self.stream.abort()


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    """A step as the classic builder numbers it: its instruction word, where it is in the Dockerfile (0-based
    line, -1 for the LABEL steps the engine adds for the API's labels) and its stage (-1 before the first FROM)."""

    number: int
    keyword: str
    startline: int
    stage: int


def plan_steps(text: str, build_args: dict[str, str], target: str, labels: dict[str, str]) -> list[PlannedStep]:
    """The steps the classic builder runs, numbered as it numbers them: the global ARGs and every stage up to
    `target` (all stages without one), then one LABEL step per API label (builder.addNodesForLabelOption)."""
    steps: list[PlannedStep] = []
    stage, target_seen = -1, False
    for item in dockerfiles.parse(text, build_args).instructions:
        keyword = item["instruction"].upper()
        if keyword == "FROM":
            if target_seen:
                break
            stage += 1
            words = [word for word in item["value"].split() if not word.startswith("--")]
            if target and len(words) >= 3 and words[1].upper() == "AS" and words[2].lower() == target.lower():
                target_seen = True
        steps.append(PlannedStep(len(steps) + 1, keyword, item["startline"], stage))
    if target and not target_seen:
        raise ValueError(f"no stage {target!r}")
    steps.extend(PlannedStep(len(steps) + 1, "LABEL", -1, stage) for _ in labels)
    return steps


class StepRecorder:
    """Turns the classic builder's `Step N/M : ...` lines into BuildStep rows, as they happen: for display only.

    A RUN step prints what it likes, fake `Step` lines included, so a line is taken only as the very next step,
    of the total the first line gave (nothing has run before the first), and of the instruction the Dockerfile
    has at that number. No id is read from the text (see the module's docstring)."""

    def __init__(self, build: Build, plan: list[PlannedStep] | None, shown: dict[int, str] | None = None) -> None:
        self.build, self.plan, self.shown = build, plan, shown or {}
        self.current: BuildStep | None = None
        self.number = 0
        self.total = 0

    def feed(self, line: str) -> str:
        """Record what the line says of the steps; returns the line as the log shows it."""
        step = STEP_LINE.match(line)
        if step:
            number, total, instruction = int(step.group(1)), int(step.group(2)), step.group(3)
            if not self._is_next(number, total, instruction):
                return line
            self.finish_current(StepStatus.SUCCEEDED)
            self.number, self.total = number, total
            if self.build.step_count != total:
                self.build.step_count = total
                Build.objects.filter(pk=self.build.pk).update(step_count=total)
            self.current = BuildStep.objects.create(
                build=self.build, number=number, instruction=mask_secrets(self.shown.get(number, instruction), {}),
                started_at=timezone.now()
            )
            return f"Step {number}/{total} : {self.shown[number]}" if number in self.shown else line
        if self.current is not None and line.strip() == "---> Using cache":
            # Shown to the user; nothing is decided on it.
            self.current.cached = True
            self.current.save(update_fields=["cached"])
        return line

    def _is_next(self, number: int, total: int, instruction: str) -> bool:
        if number != self.number + 1 or (self.number and total != self.total):
            return False
        if self.plan is not None and number == 1 and total != len(self.plan):
            # The engine counts otherwise than the plan: keep the order check only, and decide nothing on the plan.
            log.warning("Build %s: the engine counts %s steps, the Dockerfile %s", self.build.pk, total, len(self.plan))
            self.plan = None
        if self.plan is not None:
            words = instruction.split(None, 1)
            return bool(words) and words[0].upper() == self.plan[number - 1].keyword
        return True

    def finish_current(self, status: str) -> None:
        if self.current is None:
            return
        self.current.status = status
        self.current.finished_at = timezone.now()
        self.current.save(update_fields=["status", "finished_at"])
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


class BuildRunner(jobs.JobRunner):
    """A build as a job: claimed only where it is placed, its log masked of its secrets, the next build handed
    out once it ends."""

    model = Build
    related = ("source", "repository", "node")

    def __init__(self, worker: str = "") -> None:
        self.worker = worker
        self.secrets: dict[str, str] = {}
        self.logbuffer: LogBuffer | None = None

    def load(self, job_id: int) -> Build | None:
        build = super().load(job_id)
        if build is not None:
            self.secrets = json.loads(build.secret_build_args) if build.secret_build_args else {}
            self.logbuffer = LogBuffer(build, self.secrets)
        return build

    def claim(self, job: Build) -> bool:
        return claim(job)

    def work(self, job: Build) -> tuple[str, str]:
        Build.objects.filter(pk=job.pk).update(worker=self.worker or socket.gethostname())
        return _run(job, self.secrets, self.logbuffer)

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


def _run(build: Build, secrets: dict[str, str], logbuffer: LogBuffer) -> tuple[str, str]:
    timeout = build.timeout or settings.BUILD_DEFAULT_TIMEOUT
    # The node's registered engine, which the scheduler chose for its cache; it is the DOCKER_HOST its worker
    # registered, so the two differ only when a build with no node reaches a worker (then: the worker's engine).
    with engine_for(build, timeout=max(timeout, 60) + 30) as engine:
        build_args = {**build.build_args, **secrets}
        labels = image_labels(build)
        dockerfile_text = _dockerfile_text(build)
        plan = _plan(build, dockerfile_text, build_args, labels)
        # The engine gets a Dockerfile naming the ids of the images the owner may use, never a name it would
        # resolve itself on a shared engine (builds/access.py).
        try:
            sent_text, shown = _dockerfile_with_ids(engine, build, dockerfile_text, build_args, plan)
        except access.ImageAccessError as exc:
            return JobStatus.FAILED, str(exc)
        steps = StepRecorder(build, plan, shown)
        replace, dockerfile_name = ({}, build.dockerfile) if sent_text == dockerfile_text else _cut_context(
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

        if watcher.reason == "cancelled":
            steps.finish_current(StepStatus.CANCELLED)
            return JobStatus.CANCELLED, "Cancelled."
        if watcher.reason == "lost":
            steps.finish_current(StepStatus.FAILED)
            return JobStatus.FAILED, BUILD_WORKER_LOST
        if watcher.reason == "timeout":
            steps.finish_current(StepStatus.FAILED)
            _record_failure(engine, build, request, sent_text, steps.plan)
            return JobStatus.FAILED, f"The build took longer than its timeout of {timeout} seconds."
        if error or not image_id:
            steps.finish_current(StepStatus.FAILED)
            _record_failure(engine, build, request, sent_text, steps.plan)
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


def _dockerfile_with_ids(engine: Engine, build: Build, text: str | None, build_args: dict[str, str],
                         plan: list[PlannedStep] | None) -> tuple[str | None, dict[int, str]]:
    """The Dockerfile to send, its images replaced by their ids, and {step number: the instruction as the user
    wrote it} for the steps whose line changed (the step list shows the user's words, not the ids)."""
    if text is None:
        return None, {}
    resolved = access.resolve_build_images(build.owner, engine, text, build_args)
    if not resolved:
        return text, {}
    sent = dockerfiles.rewrite_image_uses(text, build_args, resolved)
    original, rewritten = text.splitlines(), sent.splitlines()
    by_line = {item["startline"]: item for item in dockerfiles.parse(text, build_args).instructions}
    shown = {}
    for step in plan or []:
        item = by_line.get(step.startline)
        if item is not None and original[step.startline] != rewritten[step.startline]:
            shown[step.number] = f"{item['instruction'].upper()} {item['value']}"
    return sent, shown


def _dockerfile_text(build: Build) -> str | None:
    """The Dockerfile the engine is sent, or None when it cannot be read as one (then nothing is decided on it)."""
    try:
        return plan_dockerfile_text(build.source, build.dockerfile, build.path)
    except ContextError:
        return None


def _plan(build: Build, text: str | None, build_args: dict[str, str],
          labels: dict[str, str]) -> list[PlannedStep] | None:
    if text is None:
        return None
    try:
        return plan_steps(text, build_args, build.target, labels)
    except Exception as exc:  # a Dockerfile the parser cannot read: the engine will say what is wrong with it
        log.info("Build %s: no step plan (%s)", build.pk, exc)
        return None


def record_layers(engine: Engine, build: Build, plan: list[PlannedStep] | None, image_id: str) -> None:
    """Give the final stage's steps their layer ids from the image's history, as the engine reports it.

    The classic builder commits one history entry per instruction after FROM (ARG, ENV and LABEL included, and the
    LABEL steps of the API's labels), so the final stage's steps are the newest entries of the history, and the
    entry before them is what its FROM started from. Steps of earlier stages are in no history of the image:
    they keep no layer id."""
    if plan is None:
        return
    final = [step for step in plan if step.stage == plan[-1].stage and step.stage >= 0]
    after_from = [step for step in final if step.keyword != "FROM"]
    try:
        history = image_history(engine, image_id)
    except EngineError as exc:
        log.warning("Build %s: no history for its image: %s", build.pk, exc)
        return
    if len(history) <= len(after_from) or history[0].get("Id") != image_id:
        log.warning("Build %s: the image's history does not fit its %s steps", build.pk, len(after_from))
        return
    # Newest first: the last step is entry 0, the FROM's image is the entry just older than the stage's first step.
    entries = {step.number: history[index] for index, step in enumerate(reversed(after_from))}
    if final and final[0].keyword == "FROM":
        entries[final[0].number] = history[len(after_from)]
    for number, entry in entries.items():
        layer = str(entry.get("Id") or "")
        if layer.startswith("sha256:"):
            BuildStep.objects.filter(build=build, number=number).update(
                layer_id=layer.removeprefix("sha256:")[:SHORT_ID])


def _record_failure(engine: Engine, build: Build, request: BuildRequest, text: str | None,
                    plan: list[PlannedStep] | None) -> None:
    failed = build.steps.filter(status__in=[StepStatus.FAILED, StepStatus.CANCELLED]).order_by("-number").first()
    last_good = ""
    if failed is not None and text is not None and plan is not None:
        try:
            last_good = last_good_layer(engine, build, request, text, plan, failed.number)
        except (EngineError, ContextError) as exc:
            log.warning("Build %s: no last good layer: %s", build.pk, exc)
    Build.objects.filter(pk=build.pk).update(failed_step=failed.number if failed else None, last_good_layer=last_good)


def last_good_layer(engine: Engine, build: Build, request: BuildRequest, text: str, plan: list[PlannedStep],
                    failed_number: int) -> str:
    """The image the failed step started from, as the engine itself names it: the `aux` id of a build of the
    Dockerfile cut just before the failed instruction (the stages before it and its own stage up to it).

    The steps before the failed one were committed, so the engine's cache serves the cut build at once, on the
    same engine with the same build args and context; "" when the failed step is a FROM (nothing was built
    yet), one of the engine's label steps, or the cut build does not end with an image."""
    if not 1 <= failed_number <= len(plan):
        return ""
    failed = plan[failed_number - 1]
    if failed.keyword == "FROM" or failed.startline < 0 or failed.stage < 0:
        return ""
    cut = "".join(text.splitlines(keepends=True)[: failed.startline])
    replace, dockerfile = _cut_context(build, cut.encode("utf-8"))
    cut_request = dataclasses.replace(
        request, context=stream_context(build.source, build.dockerfile, build.path, replace=replace),
        dockerfile=dockerfile, tag=None, labels={}, target="", no_cache=False)
    stream = engine_builds.build(engine, cut_request)
    timer = threading.Timer(CUT_BUILD_TIMEOUT, stream.abort)
    timer.start()
    image_id, error = "", False
    try:
        for message in stream:
            if "aux" in message and isinstance(message["aux"], dict):
                image_id = str(message["aux"].get("ID") or image_id)
            elif "errorDetail" in message or "error" in message:
                error = True
    finally:
        timer.cancel()
        stream.abort()
    # A cut build stopped by the timer ends without an `aux` record.
    return "" if error else image_id


def _cut_context(build: Build, cut: bytes) -> tuple[dict[str, bytes], str]:
    """What the cut build's context replaces or adds, and the Dockerfile path it names, so that COPY sees the same
    files as the failed build did (else `COPY .` would miss the cache).

    The engine hides the Dockerfile and `.dockerignore` from COPY only when the `.dockerignore` lists them. So: a
    hidden Dockerfile is replaced in place; otherwise the cut travels under a new name that a `.dockerignore`
    hides (a new one that hides itself too, or the user's own when it hides itself), as the Docker CLI sends a
    Dockerfile from outside the context. When the user's `.dockerignore` is seen by COPY, the Dockerfile is
    replaced in place and a step that copies it runs again (within CUT_BUILD_TIMEOUT)."""
    dockerfile = posixpath.normpath(build.dockerfile or "Dockerfile")
    name = CUT_DOCKERFILE_PREFIX + tokens.token_hex(10)
    try:
        ignore_text: str | None = plan_dockerfile_text(build.source, ".dockerignore", build.path)
    except ContextError:
        ignore_text = None
    if ignore_text is None:
        return {".dockerignore": f".dockerignore\n{name}\n".encode(), name: cut}, name
    try:
        dropped = dropped_by_engine(DockerIgnore.parse(ignore_text), dockerfile)
    except (DockerIgnoreError, ValueError):
        dropped = set()
    if dockerfile in dropped:
        return {dockerfile: cut}, dockerfile
    if ".dockerignore" in dropped:
        return {".dockerignore": f"{ignore_text}\n{name}\n".encode(), name: cut}, name
    return {dockerfile: cut}, dockerfile


def record_image(build: Build, engine: Engine, image_id: str) -> None:
    """Hook for the image records (builds/images.py) once they exist."""
    image = images.record_built_image(build, engine, image_id)
    if build.node_id is not None:
        # Where the image lives: its push and analysis are routed to this node's queue (builds/nodes.route_task).
        Image.objects.filter(pk=image.pk).update(node=build.node_id)


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
