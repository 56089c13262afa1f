"""Builds on an engine: the classic builder's stream, and the containers a build or its debugging leaves."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from console import references
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


class BuildStream:
    """One `/build` call: iterate it for the engine's JSON messages; `abort()` (from any thread) ends it.

    The classic builder stops a build when its client goes away: the request's context ends, and the RUN step
    that is running has its container killed and removed by the engine itself (moby's containerManager.Run).
    So stopping a build needs no container id, which only the build's text output would tell: `abort()` shuts
    down the socket the answer streams on. The reading thread then sees the stream end, and the engine removes
    what the build was running. A worker that dies mid-build has its connection closed by the kernel, to the
    same effect.
    """

    def __init__(self, engine: Engine, request: BuildRequest) -> None:
        self.engine, self.request = engine, request
        self.aborted = threading.Event()
        self._response = None
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[dict]:
        api = self.engine.api
        api.hooks.setdefault("response", []).append(self._capture)
        try:
            with self.engine.errors("Starting the build"):
                try:
                    stream = api.build(
                        fileobj=self._context(),
                        custom_context=True,
                        dockerfile=self.request.dockerfile,
                        tag=self.request.tag,
                        buildargs=self.request.build_args or None,
                        labels=self.request.labels or None,
                        target=self.request.target or None,
                        nocache=self.request.no_cache,
                        rm=True,
                        forcerm=True,
                        pull=False,
                        decode=True,
                        container_limits=self._limits() or None,
                    )
                except Exception:
                    if self.aborted.is_set():
                        return
                    raise
        finally:
            with contextlib.suppress(ValueError):
                api.hooks["response"].remove(self._capture)
        try:
            with self.engine.errors("Reading the build's output"):
                yield from stream
        except Exception:
            # The socket shut under the reader (whatever the HTTP client makes of that) is how an abort ends the
            # stream, not an engine failure.
            if not self.aborted.is_set():
                raise
        finally:
            with self._lock:
                response, self._response = self._response, None
            if response is not None:
                _shut(response)
                with contextlib.suppress(Exception):
                    response.close()

    def abort(self) -> None:
        """Stop the build: the engine kills the running step's container when the connection goes. Safe from
        another thread (the socket is only shut down; the reading thread closes the answer)."""
        self.aborted.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shut(response)

    def _context(self) -> Iterator[bytes]:
        for chunk in self.request.context:
            if self.aborted.is_set():
                # Raising (not returning) makes the client drop the connection instead of ending the body as if
                # the tar were complete.
                raise BuildAborted("The build was stopped while its context was being sent.")
            yield chunk

    def _capture(self, response, *args, **kwargs) -> None:
        # Every answer of this client passes here while the build starts; only the /build one is kept.
        if response.request.method == "POST" and response.request.path_url.split("?")[0].endswith("/build"):
            with self._lock:
                self._response = response
            if self.aborted.is_set():
                _shut(response)

    def _limits(self) -> dict:
        limits: dict = {}
        if self.request.memory:
            # No swap on top: a build over its memory limit fails instead of crawling.
            limits.update(memory=self.request.memory, memswap=self.request.memory)
        if self.request.cpu_shares:
            limits["cpushares"] = self.request.cpu_shares
        if self.request.cpuset_cpus:
            limits["cpusetcpus"] = self.request.cpuset_cpus
        return limits


class BuildAborted(Exception):
    """The build was aborted before the engine answered."""


def _shut(response) -> None:
    """Shut the socket a streaming answer arrives on (plain, TLS or unix; an ssh channel is closed)."""
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    raw = getattr(fp, "raw", None)
    sock = getattr(raw, "_sock", raw)
    channel = getattr(fp, "channel", None)
    with contextlib.suppress(Exception):
        if sock is not None and hasattr(sock, "shutdown"):
            sock.shutdown(socket.SHUT_RDWR)
        elif channel is not None:
            channel.close()


def build(engine: Engine, request: BuildRequest) -> BuildStream:
    """Send the context to `/build` (classic builder, intermediate containers always removed) when the answer
    is iterated, yielding the engine's JSON messages as they come. Connection failures become EngineError;
    build errors arrive as messages with `errorDetail`. `abort()` on the answer stops the build."""
    return BuildStream(engine, request)


def tag_image(engine: Engine, image: str, reference: str) -> None:
    """Name an image `reference` (name[:tag], the tag `latest` when none); a registry port is not a tag."""
    repository, tag = references.split(reference)
    engine.tag_image(image, repository, tag or references.DEFAULT_TAG)


def kill_and_remove_container(engine: Engine, container_id: str) -> None:
    """Stop a build's intermediate container at once and remove it; gone already is fine."""
    with contextlib.suppress(EngineNotFound):
        with engine.errors(f"Removing container {container_id[:12]}"):
            engine.api.remove_container(container_id, force=True)


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str
    timed_out: bool


def run_throwaway(engine: Engine, image: str, command: str, timeout: int, memory: int,
                  nano_cpus: int | None = None) -> CommandResult:
    """Run `sh -c command` in a new container of `image`, with no network, limited memory, CPU, processes and
    time; the container is removed whatever happens.

    The output is read as it comes and only its last OUTPUT_LIMIT bytes are kept: a command may print gigabytes,
    and the web process that runs this must not hold them. Past OUTPUT_READ_LIMIT the command is killed and the
    output says it was truncated."""
    with engine.errors(f"Running a command in {image[:19]}"):
        container = engine.api.create_container(
            image=image,
            command=["/bin/sh", "-c", command],
            user="",
            labels={"io.console.purpose": "debug"},
            host_config=engine.api.create_host_config(
                mem_limit=memory, memswap_limit=memory, network_mode="none", pids_limit=256, nano_cpus=nano_cpus
            ),
        )
    container_id = container["Id"]
    try:
        with engine.errors("Starting the debug container"):
            engine.api.start(container_id)
        deadline = threading.Event()

        def time_up() -> None:
            deadline.set()
            _kill_quietly(engine, container_id)

        # The log stream ends when the container does: the timer ends a command that would not.
        timer = threading.Timer(timeout, time_up)
        timer.daemon = True
        timer.start()
        try:
            tail, total, stopped = _read_capped_output(engine, container_id, deadline)
        finally:
            timer.cancel()
        if stopped:
            _kill_quietly(engine, container_id)
        exit_code = _exit_code(engine, container_id)
        text = tail.decode("utf-8", "replace")
        if stopped:
            text = (f"[output truncated: the command printed more than {OUTPUT_READ_LIMIT:,} bytes and was "
                    f"stopped; the last {len(tail):,} bytes read follow]\n") + text
        elif total > len(tail):
            text = f"[output truncated: the last {len(tail):,} of {total:,} bytes follow]\n" + text
        timed_out = deadline.is_set()
        return CommandResult(137 if timed_out or stopped else exit_code, text, timed_out)
    finally:
        kill_and_remove_container(engine, container_id)


# The debug box reads this much of a command's output at most, then kills the command: enough to scroll past
# noise to the last OUTPUT_LIMIT bytes, far below what would weigh on a web process.
OUTPUT_READ_LIMIT = 16 * OUTPUT_LIMIT
# After the output ends (the command exited or was killed) the engine reports the exit code within moments.
EXIT_WAIT_SECONDS = 10


def _read_capped_output(engine: Engine, container_id: str, deadline: threading.Event) -> tuple[bytes, int, bool]:
    """The last OUTPUT_LIMIT bytes of the container's output, how many were read, and whether reading stopped at
    OUTPUT_READ_LIMIT (the command still running)."""
    kept = bytearray()
    total = 0
    with engine.errors("Reading the command's output"):
        stream = engine.api.logs(container_id, stdout=True, stderr=True, stream=True, follow=True)
    try:
        with engine.errors("Reading the command's output"):
            for chunk in stream:
                total += len(chunk)
                kept += chunk
                if len(kept) > 2 * OUTPUT_LIMIT:
                    del kept[:-OUTPUT_LIMIT]
                if total > OUTPUT_READ_LIMIT:
                    return bytes(kept[-OUTPUT_LIMIT:]), total, True
    except EngineError:
        # A kill at the deadline may cut the stream mid-read: what was read is the answer.
        if not deadline.is_set():
            raise
    finally:
        with contextlib.suppress(Exception):
            stream.close()
    return bytes(kept[-OUTPUT_LIMIT:]), total, False


def _exit_code(engine: Engine, container_id: str) -> int:
    try:
        with engine.errors("Waiting for the command"):
            return int(engine.api.wait(container_id, timeout=EXIT_WAIT_SECONDS).get("StatusCode", -1))
    except EngineError:
        return 137


def _kill_quietly(engine: Engine, container_id: str) -> None:
    # Exited already is fine: the container is removed afterwards either way.
    with contextlib.suppress(EngineError):
        with engine.errors("Stopping the command"):
            engine.api.kill(container_id)


def full_image_id(engine: Engine, image: str) -> str:
    """The full id of an image given a short id (the builder prints 12 characters)."""
    with engine.errors(f"Inspecting image {image}"):
        return engine.api.inspect_image(image)["Id"]
