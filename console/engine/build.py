"""Builds on an engine: the classic builder's stream, and the containers a build or its debugging leaves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from console.engine.core import Engine, EngineError, EngineNotFound

OUTPUT_LIMIT = 64 * 1024


@dataclass
class BuildRequest:
    """What the classic builder needs, in the console's words; `context` is the tar, in chunks."""

    context: Iterable[bytes]
    dockerfile: str = "Dockerfile"
    tag: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    memory: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str = ""


def build(engine: Engine, request: BuildRequest) -> Iterator[dict]:
    """Send the context to `/build` (classic builder, intermediate containers always removed) and yield the
    engine's JSON messages as they come. Connection failures become EngineError; build errors arrive as
    messages with `errorDetail`."""
    limits = {}
    if request.memory:
        # No swap on top: a build over its memory limit fails instead of crawling.
        limits.update(memory=request.memory, memswap=request.memory)
    if request.cpu_shares:
        limits["cpushares"] = request.cpu_shares
    if request.cpuset_cpus:
        limits["cpusetcpus"] = request.cpuset_cpus
    with engine.errors("Starting the build"):
        stream = engine.api.build(
            fileobj=iter(request.context),
            custom_context=True,
            dockerfile=request.dockerfile,
            tag=request.tag,
            buildargs=request.build_args or None,
            labels=request.labels or None,
            target=request.target or None,
            nocache=request.no_cache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            container_limits=limits or None,
        )
    with engine.errors("Reading the build's output"):
        yield from stream


def tag_image(engine: Engine, image: str, reference: str) -> None:
    """Name an image `reference` (name[:tag], the tag `latest` when none); a registry port is not a tag."""
    repository, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    engine.tag_image(image, repository, tag or "latest")


def kill_and_remove_container(engine: Engine, container_id: str) -> None:
    """Stop a build's intermediate container at once and remove it; gone already is fine."""
    with contextlib.suppress(EngineNotFound):
        with engine.errors(f"Removing container {container_id[:12]}"):
            engine.api.remove_container(container_id, force=True)


def container_exists(engine: Engine, container_id: str) -> bool:
    try:
        with engine.errors(f"Inspecting container {container_id[:12]}"):
            engine.api.inspect_container(container_id)
    except EngineNotFound:
        return False
    return True


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str
    timed_out: bool


def run_throwaway(engine: Engine, image: str, command: str, timeout: int, memory: int) -> CommandResult:
    """Run `sh -c command` in a new container of `image`, with no network, limited memory and time;
    the container is removed whatever happens."""
    with engine.errors(f"Running a command in {image[:19]}"):
        container = engine.api.create_container(
            image=image,
            command=["/bin/sh", "-c", command],
            user="",
            labels={"io.console.purpose": "debug"},
            host_config=engine.api.create_host_config(
                mem_limit=memory, memswap_limit=memory, network_mode="none", pids_limit=256
            ),
        )
    container_id = container["Id"]
    try:
        with engine.errors("Starting the debug container"):
            engine.api.start(container_id)
        timed_out = False
        try:
            with engine.errors("Waiting for the command"):
                status = engine.api.wait(container_id, timeout=timeout)
            exit_code = int(status.get("StatusCode", -1))
        except EngineError:
            timed_out = True
            with contextlib.suppress(EngineError):
                with engine.errors("Stopping the command"):
                    engine.api.kill(container_id)
            exit_code = 137
        with engine.errors("Reading the command's output"):
            output = engine.api.logs(container_id, stdout=True, stderr=True)
        text = output[-OUTPUT_LIMIT:].decode("utf-8", "replace")
        return CommandResult(exit_code, text, timed_out)
    finally:
        kill_and_remove_container(engine, container_id)


def full_image_id(engine: Engine, image: str) -> str:
    """The full id of an image given a short id (the builder prints 12 characters)."""
    with engine.errors(f"Inspecting image {image}"):
        return engine.api.inspect_image(image)["Id"]
