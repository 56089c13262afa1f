"""The Dockerfile the engine is sent: the user's, its images replaced by the ids the owner may use, travelling
under a hidden name when it cannot replace the user's file in the context (as the Docker CLI sends one).
"""

from __future__ import annotations

import logging
import posixpath
import secrets as tokens

from builds import access
from builds import dockerfile as dockerfiles
from builds.models import Build
from builds.runner.steps import PlannedStep
from builds.sources.context import ContextError, plan_dockerfile_text
from builds.sources.dockerignore import DockerIgnore, DockerIgnoreError, dropped_by_engine
from console.engine import Engine

log = logging.getLogger(__name__)

# The name a replaced Dockerfile travels under when it cannot take the user's file's place (replace_dockerfile).
CUT_DOCKERFILE_PREFIX = ".console-cut-dockerfile."


def dockerfile_with_ids(engine: Engine, build: Build, text: str | None, build_args: dict[str, str],
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


def read_dockerfile(build: Build) -> str | None:
    """The Dockerfile the engine is sent, or None when it cannot be read as one (then nothing is decided on it)."""
    try:
        return plan_dockerfile_text(build.source, build.dockerfile, build.path)
    except ContextError:
        return None


def replace_dockerfile(build: Build, cut: bytes) -> tuple[dict[str, bytes], str]:
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

