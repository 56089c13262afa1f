"""A build on the engine's BuildKit (console/engine/buildkit.py drives it through the Docker CLI).

The steps the page shows come from the progress events: each step vertex (`[stage i/n] INSTRUCTION`) becomes a
BuildStep, numbered in the order BuildKit starts them (stages run in parallel, and BuildKit numbers the steps of
each stage on their own), with its stage, whether the cache served it and how long it took. Nothing a RUN prints
can pass for an event (see the driver's docstring). Labels go to the image config with `--label`, so they make no
steps and no history. Secrets reach the steps that mount them as files (`--secret`), never as build arguments,
and a leak check reads the finished image for each value (builds/leakcheck.py): a hit fails the build and
removes the image.

BuildKit refuses `FROM <image id>`, so the Dockerfile it is sent names the images the owner may use by names only
the console gives (builds/access.py `build_names`): a shared base by its plain name, the owner's own image by its
pinned `console-u<id>/by-id:<id>` name, the same for every build (so the steps stay cached).

On a farm node the build shares its cache through the console's registry (builds/sharedcache.py): it imports the
cache of its repository's last build of the same Dockerfile (`--cache-from`, unless it asked for no cache),
exports its own inline, and pushes the image there once the leak check has passed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from builds import access, sharedcache
from builds import dockerfile as dockerfiles
from builds.constants import StepStatus
from builds.leakcheck import LEAK, LeakCheckError, find_leaks
from builds.models import Build, BuildStep, Image, Layer
from builds.runner.progress import LogBuffer, Watcher, stopped_outcome
from builds.services.analysis import lock_image
from builds.services.builds import mask_secrets
from builds.sources.context import ContextError, stream_context
from console.constants import JobStatus
from console.engine import Engine, EngineError
from console.engine import buildkit as engine_buildkit
from console.engine.build import tag_image
from console.engine.images import export_image
from console.engine.imagestore import remove_image
from console.engine.registry import push, remove_tag

log = logging.getLogger(__name__)

# The cut build of a failed step's last good layer is served from the cache; a step it cannot serve runs again
# for at most this long.
CUT_BUILD_TIMEOUT = 60
# The instructions BuildKit shows as steps (the others only change the image config).
VERTEX_INSTRUCTIONS = frozenset({"FROM", "RUN", "COPY", "ADD", "WORKDIR"})
_UNNAMED_STAGE = re.compile(r"^stage-(\d+)$")
# BuildKit's vertex that reads a `--cache-from` image's cache.
CACHE_IMPORT_VERTEX = "importing cache manifest from "


# What an engine said of BuildKit, by its address, kept this long: asking costs a round trip per build.
ENGINE_ANSWER_SECONDS = 60
_engine_answers: dict[str, tuple[float, bool]] = {}


def buildkit_unavailable(engine: Engine) -> str:
    """Why this worker cannot BuildKit-build on `engine` ("" when it can)."""
    if engine_buildkit.buildkit_cli() is None:
        return "this worker has no Docker CLI that drives BuildKit"
    asked = _engine_answers.get(engine.where)
    if asked is None or time.monotonic() - asked[0] > ENGINE_ANSWER_SECONDS:
        asked = (time.monotonic(), engine_buildkit.engine_has_buildkit(engine))
        _engine_answers[engine.where] = asked
    return "" if asked[1] else "the engine has no BuildKit"


def remove_stale_build_folders() -> list[str]:
    """The private folders (secrets, keys) that builds of dead worker processes on this machine left."""
    return engine_buildkit.remove_stale_folders()


# -- the Dockerfile BuildKit is sent -------------------------------------------------------------------------


def secret_ids(build: Build, secrets: dict[str, str]) -> dict[str, str]:
    """{name: the id BuildKit mounts it by}: the name and an HMAC of the owner, the name and the value, so that a
    cached step that read a secret serves only builds of the same owner with the same value (BuildKit's cache key
    holds a secret's id, not its value, and the engine's cache is shared by every user)."""
    key = settings.SECRET_KEY.encode()
    return {name: f"{name}-" + hmac.new(key, f"{build.owner_id}\0{name}\0{value}".encode(), hashlib.sha256)
            .hexdigest()[:20] for name, value in secrets.items()}


def dockerfile_for_buildkit(engine: Engine, build: Build, text: str, build_args: dict[str, str],
                            ids: dict[str, str]) -> tuple[str, dict]:
    """The Dockerfile to send (its images by names only the console gives, its secrets by the ids of
    `secret_ids`, no `# syntax=` frontend) and {sent name: the name the user wrote} to show the user's words in
    the steps and the log."""
    resolved = access.resolve_build_images(build.owner, engine, text, build_args)
    names = {reference: name for reference, name in access.build_names(build.owner, engine, resolved).items()
             if name != reference}
    sent = dockerfiles.without_syntax_directive(text)
    if names:
        sent = dockerfiles.rewrite_image_uses(sent, build_args, names)
    if ids:
        sent = dockerfiles.rewrite_secret_mounts(sent, build_args, ids)
    return sent, {name: reference for reference, name in names.items()}


def shown(text: str, user_names: dict[str, str]) -> str:
    for sent, written in user_names.items():
        text = text.replace(sent, written)
    return text


# -- steps ------------------------------------------------------------------------------------------------


@dataclass
class _Step:
    row: BuildStep
    # Its number within its stage, as BuildKit shows it (`[stage i/n]`).
    step: int


class BuildkitSteps:
    """Progress events -> BuildStep rows and log lines (masked of secrets, the user's image names shown)."""

    def __init__(self, build: Build, logbuffer: LogBuffer, secrets: dict[str, str], user_names: dict[str, str],
                 layout: tuple[list[str], list[list[int]]]):
        self.build, self.logbuffer, self.secrets, self.user_names = build, logbuffer, secrets, user_names
        self.layout = layout
        self.totals: dict[str, int] = {}
        self.steps: dict[int, _Step] = {}
        self.errors: list[str] = []
        # The vertices that import the shared cache: one that fails (no cache yet) fails no build.
        self.cache_imports: set[int] = set()

    def _text(self, text: str) -> str:
        return mask_secrets(shown(text, self.user_names), self.secrets)

    def feed(self, event) -> None:
        kind = type(event)
        vertex = getattr(event, "vertex", None)
        if kind is engine_buildkit.VertexStarted:
            self.logbuffer.add(f"#{vertex} {self._text(event.name)}")
            if event.name.startswith(CACHE_IMPORT_VERTEX):
                self.cache_imports.add(vertex)
            if event.step is not None and not event.internal:
                self._start(event)
        elif kind is engine_buildkit.VertexLog:
            self.logbuffer.add(f"#{vertex} {event.text}")
        elif kind is engine_buildkit.VertexStatus:
            self.logbuffer.add(f"#{vertex} {event.text}")
        elif kind is engine_buildkit.VertexCached:
            self.logbuffer.add(f"#{vertex} CACHED")
            self._end(vertex, StepStatus.SUCCEEDED, cached=True)
        elif kind is engine_buildkit.VertexDone:
            self.logbuffer.add(f"#{vertex} DONE" + (f" {event.seconds:.1f}s" if event.seconds is not None else ""))
            self._end(vertex, StepStatus.SUCCEEDED, seconds=event.seconds)
        elif kind is engine_buildkit.VertexError and vertex in self.cache_imports:
            self.logbuffer.add(f"#{vertex} No shared cache to import ({self._text(event.message)}): "
                               "the steps run without it.")
        elif kind is engine_buildkit.VertexError:
            self.logbuffer.error(f"#{vertex} {self._text(event.message)}")
            self.errors.append(self._text(event.message))
            self._end(vertex, StepStatus.FAILED)
        elif kind is engine_buildkit.VertexCanceled:
            self.logbuffer.add(f"#{vertex} CANCELED")
            self._end(vertex, StepStatus.CANCELLED)
        elif kind is engine_buildkit.BuildError:
            self.errors.append(self._text(event.message))
        elif kind is engine_buildkit.Message:
            self.logbuffer.add(event.text)

    def _start(self, event) -> None:
        # A step the layout does not place (a Dockerfile the parser reads otherwise) goes after the placed ones.
        number = step_number(self.layout, event.stage, event.step) or 1000 + len(self.steps) + 1
        if any(step.row.number == number for step in self.steps.values()):
            return
        instruction = self._text(event.instruction or event.name)
        row = BuildStep.objects.create(build=self.build, number=number, instruction=instruction,
                                       stage=(event.stage or "")[:200], started_at=timezone.now())
        self.steps[event.vertex] = _Step(row, event.step)
        self.totals[event.stage or ""] = max(self.totals.get(event.stage or "", 0), event.total or 0)
        Build.objects.filter(pk=self.build.pk).update(step_count=sum(self.totals.values()))

    def _end(self, vertex: int, status: str, cached: bool = False, seconds: float | None = None) -> None:
        step = self.steps.get(vertex)
        if step is None or step.row.status != StepStatus.RUNNING:
            return
        step.row.status, step.row.finished_at = status, timezone.now()
        if seconds is not None:
            # The printer shows a vertex when it gets to it, not when BuildKit started it (stages run at once):
            # the step took what BuildKit says it took.
            step.row.started_at = step.row.finished_at - timedelta(seconds=seconds)
        step.row.cached = step.row.cached or cached
        step.row.save(update_fields=["status", "started_at", "finished_at", "cached"])

    def finish_running(self, status: str) -> None:
        for vertex in list(self.steps):
            self._end(vertex, status)

    def failed(self) -> _Step | None:
        failed = [step for step in self.steps.values() if step.row.status in (StepStatus.FAILED,
                                                                              StepStatus.CANCELLED)]
        return min(failed, key=lambda step: step.row.number) if failed else None


# -- where a step is in the Dockerfile --------------------------------------------------------------------


def stage_index(names: list[str], stage: str | None) -> int | None:
    """The index of the stage BuildKit names `stage`: its `AS` name, `stage-<n>` when it has none, nothing in a
    one-stage build."""
    if not stage:
        return 0 if len(names) == 1 else None
    if stage.lower() in names:
        return names.index(stage.lower())
    match = _UNNAMED_STAGE.match(stage)
    return int(match.group(1)) if match else None


def stage_layout(text: str, build_args: dict[str, str]) -> tuple[list[str], list[list[int]]]:
    """The stages' names and, per stage, the 0-based lines of the instructions BuildKit shows as its steps
    (`[stage i/n]`): FROM an image (not FROM an earlier stage), RUN, COPY, ADD, WORKDIR."""
    parsed = dockerfiles.parse(text, build_args)
    lines: list[list[int]] = []
    for item in parsed.instructions:
        keyword = item["instruction"].upper()
        if keyword == "FROM":
            lines.append([])
            words = [word for word in item["value"].split() if not word.startswith("--")]
            if words and words[0].lower() in parsed.stages[:len(lines) - 1]:
                continue
        if lines and keyword in VERTEX_INSTRUCTIONS:
            lines[-1].append(item["startline"])
    return parsed.stages, lines


def step_line(layout: tuple[list[str], list[list[int]]], stage: str, step: int) -> int | None:
    """The 0-based line of BuildKit's step `step` (from 1) of `stage`; None when the layout has no such step."""
    names, lines = layout
    index = stage_index(names, stage)
    if index is None or index >= len(lines) or not 0 < step <= len(lines[index]):
        return None
    return lines[index][step - 1]


def step_number(layout: tuple[list[str], list[list[int]]], stage: str | None, step: int) -> int | None:
    """A step's number for the build, in the Dockerfile's order: the steps of the stages before it, then its own
    place in its stage (stages run at once, and BuildKit numbers each stage's steps on its own)."""
    names, lines = layout
    index = stage_index(names, stage)
    if index is None or index >= len(lines):
        return None
    return sum(len(stage_lines) for stage_lines in lines[:index]) + step


# -- the build --------------------------------------------------------------------------------------------


def image_tags(build: Build) -> list[str]:
    return [access.engine_name(build.owner, tag) for tag in build.tags]


def run_buildkit(build: Build, engine: Engine, secrets: dict[str, str], logbuffer: LogBuffer, text: str | None,
                 labels: dict[str, str], timeout: int) -> tuple[str, str, str]:
    """Run the build on BuildKit: (status, error for the user, image id)."""
    if text is None:
        return JobStatus.FAILED, "The Dockerfile cannot be read.", ""
    build_args = {name: value for name, value in build.build_args.items() if name not in build.secret_names}
    ids = secret_ids(build, secrets)
    try:
        sent, user_names = dockerfile_for_buildkit(engine, build, text, build_args, ids)
    except access.ImageAccessError as exc:
        return JobStatus.FAILED, str(exc), ""
    replace = {build.dockerfile: sent.encode("utf-8")} if sent != text else None
    shared_cache = sharedcache.location_for(build)
    request = engine_buildkit.BuildkitRequest(
        context=stream_context(build.source, build.dockerfile, build.path, replace=replace),
        dockerfile=build.dockerfile, tags=image_tags(build), build_args=build_args, labels=labels,
        target=build.target, no_cache=build.no_cache, secrets={ids[name]: value for name, value in secrets.items()},
        **cache_options(shared_cache, build.no_cache))
    steps = BuildkitSteps(build, logbuffer, secrets, user_names, stage_layout(sent, build_args))
    stream = engine_buildkit.start_build(engine, request)
    watcher = Watcher(build, logbuffer, stream, deadline=time.monotonic() + timeout)
    watcher.start()
    error = ""
    try:
        for event in stream:
            steps.feed(event)
    except (EngineError, ContextError) as exc:
        error = str(exc)
    finally:
        watcher.stopping.set()
        watcher.join(timeout=10)
        stream.close()

    if outcome := stopped_outcome(watcher.reason, timeout):
        steps.finish_running(outcome[1])
        if watcher.reason == "timeout":
            record_failure(engine, build, request, sent, steps)
        return outcome[0], outcome[2], ""
    if error or not stream.image_id:
        steps.finish_running(StepStatus.FAILED)
        record_failure(engine, build, request, sent, steps)
        message = error or (steps.errors[-1] if steps.errors else mask_secrets(stream.error, secrets))
        return JobStatus.FAILED, message or "The engine finished without an image.", ""
    steps.finish_running(StepStatus.SUCCEEDED)
    if secrets:
        leaked = check_leaks(engine, stream.image_id, secrets)
        if leaked:
            forget_image(engine, build, stream.image_id)
            return JobStatus.FAILED, leaked + " The image was removed.", ""
    if shared_cache is not None:
        share_cache(engine, build, stream.image_id, shared_cache, logbuffer)
    return JobStatus.SUCCEEDED, "", stream.image_id


def cache_options(location: sharedcache.CacheLocation | None, no_cache: bool) -> dict:
    """The request's fields for the farm's shared cache: always export it, import it unless told not to."""
    if location is None:
        return {}
    if no_cache:
        return {"inline_cache": True}
    return {"inline_cache": True, "cache_from": [location.reference],
            "registry_logins": {location.registry: sharedcache.pull_credentials(location)}}


def share_cache(engine: Engine, build: Build, image_id: str, location: sharedcache.CacheLocation,
                logbuffer: LogBuffer) -> None:
    """Push the image (its cache inline) to the shared cache, for the next build on any node. The build has
    succeeded whatever happens here: a cache that cannot be shared is a warning in its log."""
    started = time.monotonic()
    try:
        if not build.tags:
            # The engine removes an image with its last name: the cache's name goes again below, so an image
            # without tags keeps the name that only the console gives it.
            tag_image(engine, image_id, access.pinned_name(build.owner, image_id))
        tag_image(engine, image_id, location.reference)
        try:
            for _line in push(engine, f"{location.registry}/{location.repository}", location.tag,
                              sharedcache.push_auth(location)):
                pass
        finally:
            remove_tag(engine, location.reference)
    except EngineError as exc:
        logbuffer.add(f"The build cache could not be shared with the other build nodes: {exc}")
        return
    logbuffer.add(f"Shared the build cache with the other build nodes ({time.monotonic() - started:.1f} s).")


def check_leaks(engine: Engine, image_id: str, secrets: dict[str, str]) -> str:
    """The leak check's words for the user ("" when no secret is in the image); never a secret's value."""
    try:
        leaks = [leak for leak in find_leaks(export_image(engine, image_id), secrets) if leak.kind == LEAK]
    except (EngineError, LeakCheckError) as exc:
        return f"The image could not be checked for the build's secrets ({exc}), so it is not kept."
    if not leaks:
        return ""
    return " ".join(dict.fromkeys(leak.message() for leak in leaks))


def forget_image(engine: Engine, build: Build, image_id: str) -> None:
    """Take the build's names off a refused image and remove it unless another record keeps it."""
    for name in image_tags(build):
        try:
            remove_tag(engine, name)
        except EngineError as exc:
            log.warning("Build %s: could not remove the name %s: %s", build.pk, name, exc)
    if not Image.objects.filter(image_id=image_id).exists():
        try:
            remove_image(engine, image_id)
        except EngineError as exc:
            log.warning("Build %s: could not remove the refused image: %s", build.pk, exc)


def record_failure(engine: Engine, build: Build, request, sent: str, steps: BuildkitSteps) -> None:
    failed = steps.failed()
    last_good = ""
    if failed is not None:
        line = step_line(steps.layout, failed.row.stage, failed.step)
        if line is not None:
            try:
                last_good = last_good_layer(engine, build, request, sent, line)
            except (EngineError, ContextError) as exc:
                log.warning("Build %s: no last good layer: %s", build.pk, exc)
    Build.objects.filter(pk=build.pk).update(failed_step=failed.row.number if failed else None,
                                             last_good_layer=last_good)


def last_good_layer(engine: Engine, build: Build, request, sent: str, line: int) -> str:
    """The image the failed step started from: the id BuildKit gives a build of the Dockerfile cut just before
    the failed instruction (its steps come from the cache); "" for a failed FROM or a cut build that fails."""
    lines = sent.splitlines(keepends=True)
    if lines[line].strip().upper().startswith("FROM"):
        return ""
    cut = "".join(lines[:line])
    cut_request = engine_buildkit.BuildkitRequest(
        context=stream_context(build.source, build.dockerfile, build.path,
                               replace={build.dockerfile: cut.encode("utf-8")}),
        dockerfile=build.dockerfile, build_args=request.build_args, secrets=request.secrets)
    stream = engine_buildkit.start_build(engine, cut_request)
    timer = threading.Timer(CUT_BUILD_TIMEOUT, stream.abort)
    timer.start()
    try:
        for _event in stream:
            pass
    finally:
        timer.cancel()
        stream.close()
    return stream.image_id


def link_steps_to_layers(build: Build, image: Image) -> None:
    """Give the final stage's steps the layers they made: the image's history (its Layer rows, one per history
    entry), newest first, holds one entry per instruction of the final stage (the config-only ones too), so a step
    takes the next entry that its instruction made, walking back from the last step."""
    final = list(build.steps.order_by("-number"))
    if not final:
        return
    final = [step for step in final if step.stage == final[0].stage]
    entries = iter(image.layers.order_by("-index"))
    linked_layers, linked_steps = [], []
    for step in final:
        keyword = step.instruction.split(None, 1)[0].upper() if step.instruction.strip() else ""
        if keyword == "FROM":
            continue
        layer = next((entry for entry in entries if entry.created_by.split(None, 1)[:1] == [keyword]), None)
        if layer is None:
            break
        layer.build_step = step
        step.layer_id = layer.diff_id.removeprefix("sha256:")[:12] if not layer.empty_layer else ""
        linked_layers.append(layer)
        linked_steps.append(step)
    with transaction.atomic():
        lock_image(image)  # the image before its layers, as every writer of them (builds/services/analysis.py)
        Layer.objects.bulk_update(linked_layers, ["build_step"])
        BuildStep.objects.bulk_update(linked_steps, ["layer_id"])


def recorded_builder(build: Build, builder: str, reason: str = "") -> None:
    Build.objects.filter(pk=build.pk).update(builder=builder, builder_reason=reason[:300])
    build.builder, build.builder_reason = builder, reason[:300]

