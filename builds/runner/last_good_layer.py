"""The last good layer of a failed build: the image its failed step started from, as the engine names it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from builds.constants import StepStatus
from builds.models import Build
from builds.runner.dockerfile import replace_dockerfile
from builds.runner.steps import PlannedStep
from builds.sources.context import ContextError, stream_context
from console.engine import Engine, EngineError
from console.engine import build as engine_builds
from console.engine.build import BuildRequest

log = logging.getLogger(__name__)

# The build of the Dockerfile cut before a failed step is served from the cache in well under a second; a step
# the cache cannot serve is run again, for at most this long, after which the build has no last good layer.
CUT_BUILD_TIMEOUT = 60


def record_failure(engine: Engine, build: Build, request: BuildRequest, text: str | None,
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
    replace, dockerfile = replace_dockerfile(build, cut.encode("utf-8"))
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

